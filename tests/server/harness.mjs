// Shared by the server's node:test scripts: start build/mimoserve on the
// default model (generated once into the build tree), talk SSE, and load
// the npm packages installed at test time into the build tree.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const BIN = process.env.MIMOSERVE_BIN;
export const NPM = process.env.MIMOSERVE_NPM;
export const TMP = process.env.MIMOSERVE_TEST_TMP || path.join(os.tmpdir(), 'mimoserve-server-test');

if (!BIN || !fs.existsSync(BIN)) throw new Error(`MIMOSERVE_BIN (${BIN}) is not a built mimoserve; build it first`);

// Packages live in the build tree (never committed), so resolve from there.
export function npmRequire(name) {
  if (!NPM) throw new Error('MIMOSERVE_NPM is not set (run through ctest)');
  return createRequire(path.join(NPM, 'package.json'))(name);
}

// Starts `mimoserve serve --port 0 ...` and resolves once it listens.
export async function startServer(args = [], env = {}) {
  fs.mkdirSync(TMP, { recursive: true });
  const proc = spawn(BIN, ['serve', '--port', '0', '--log-level', 'warning', ...args], {
    env: { ...process.env, XDG_CACHE_HOME: path.join(TMP, 'cache'), MIMOSERVE_DEFAULT_MODEL: 'random', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start within 120 s:\n' + log)), 120000);
    const onData = (d) => {
      log += d;
      const m = log.match(/serving \S+ on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${log}`));
    });
  });
  return {
    url,
    proc,
    exited,
    log: () => log,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
      return exited;
    },
  };
}

export async function json(url, path, body, headers = {}) {
  const res = await fetch(url + path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed = null;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

// Reads an SSE response: calls onEvent(payload) for every data line
// (parsed JSON, or the string '[DONE]'); returns every payload.
export async function readSse(res, onEvent = () => {}) {
  const events = [];
  const decoder = new TextDecoder();
  let buf = '';
  for await (const piece of res.body) {
    buf += decoder.decode(piece, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of ev.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6) === '[DONE]' ? '[DONE]' : JSON.parse(line.slice(6));
        events.push(data);
        await onEvent(data);
      }
    }
  }
  return events;
}

export async function serverState(url, headers = {}) {
  const r = await json(url, '/get_server_info', undefined, headers);
  if (r.status !== 200) throw new Error('/get_server_info: ' + r.status);
  return r.body.internal_states[0];
}

// Waits until no request runs or waits in the engine.
export async function waitIdle(url, timeoutMs = 30000, headers = {}) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const s = await serverState(url, headers);
    if (s.num_running_reqs === 0 && s.num_waiting_reqs === 0) return s;
    if (Date.now() > until) throw new Error(`still busy after ${timeoutMs} ms: ${JSON.stringify(s)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
