// End to end: `mimoserve bench-serving` against a real `mimoserve serve`
// (random default model, started by tests/server/harness.mjs), checking the
// JSON it writes against what was asked; and its failures: an unreachable
// server and requests the server rejects.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN, TMP, startServer } from '../server/harness.mjs';

// Runs `mimoserve bench-serving ...args`; kills it after timeoutMs (a hang is a failure).
function bench(args, timeoutMs = 120000) {
  return new Promise((resolve) => {
    const p = spawn(BIN, ['bench-serving', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', killed = false;
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      killed = true;
      p.kill('SIGKILL');
    }, timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, killed });
    });
  });
}

const sum = (a) => a.reduce((x, y) => x + y, 0);

// Checks what every successful run must satisfy.
function checkRun(j, n, maxIn, maxOut) {
  assert.equal(j.completed, n, JSON.stringify(j.errors));
  assert.equal(j.failed, 0);
  assert.equal(j.output_lens.length, n);
  // ignore_eos: every request produced exactly what it asked for.
  assert.deepEqual(j.output_lens, j.requested_output_lens);
  assert.equal(j.total_output_tokens, sum(j.requested_output_lens));
  assert.equal(j.total_input_tokens, sum(j.input_lens));
  for (let i = 0; i < n; i++) {
    assert.ok(j.requested_output_lens[i] >= 1 && j.requested_output_lens[i] <= maxOut);
    if (maxIn) assert.ok(j.input_lens[i] >= 1 && j.input_lens[i] <= maxIn, `input ${j.input_lens[i]}`);
    assert.ok(j.ttfts[i] > 0 && j.ttfts[i] <= j.e2e_latencies[i], `ttft ${j.ttfts[i]} e2e ${j.e2e_latencies[i]}`);
    assert.ok(j.itls[i].length <= j.output_lens[i] - 1);
    assert.equal(j.errors[i], '');
  }
  assert.ok(j.duration > 0);
  assert.ok(Math.abs(j.request_throughput - n / j.duration) < 1e-6 * n);
  assert.ok(Math.abs(j.concurrency - sum(j.e2e_latencies) / j.duration) < 1e-6 * n);
  assert.ok(j.mean_e2e_latency_ms >= j.mean_ttft_ms);
  assert.ok(j.p99_e2e_latency_ms >= j.median_e2e_latency_ms);
}

describe('bench-serving', () => {
  let server;
  const dir = path.join(TMP, 'out');
  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    server = await startServer();
  });
  after(async () => server && (await server.stop()));

  it('sglang-oai: streamed completions with Poisson arrivals', async () => {
    const out = path.join(dir, 'oai.json'), plot = path.join(dir, 'oai.svg');
    fs.rmSync(out, { force: true });
    fs.rmSync(plot, { force: true });
    const r = await bench(['--base-url', server.url, '--num-prompts', '8', '--random-input-len', '32',
      '--random-output-len', '8', '--request-rate', '20', '--seed', '5', '--output-file', out, '--plot', plot]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Serving Benchmark Result/);
    assert.match(r.stdout, /Successful requests:\s+8\n/);
    assert.match(r.stdout, /Traffic request rate:\s+20\.00/);
    assert.match(r.stdout, /Mean TPOT \(ms\):/);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    checkRun(j, 8, 32, 8);
    assert.equal(j.backend, 'sglang-oai');
    assert.equal(j.request_rate, 20);
    assert.equal(j.num_prompts, 8);
    assert.ok(j.model.length > 0, 'the model came from /v1/models');
    // Token-id prompts: the server counted exactly the lengths sent, and
    // some requests streamed more than one token chunk.
    assert.ok(sum(j.itls.map((x) => x.length)) > 0);
    // Poisson arrivals at 20/s: 8 requests are spread over time, in order.
    assert.ok(j.start_times[7] > 0.02, `starts ${j.start_times}`);
    for (let i = 1; i < 8; i++) assert.ok(j.start_times[i] >= j.start_times[i - 1] - 0.01);
    const svg = fs.readFileSync(plot, 'utf8');
    assert.ok(svg.startsWith('<svg') && svg.includes('TTFT') && svg.includes('E2E latency'));
  });

  it('sglang native /generate, all at once with a concurrency limit', async () => {
    const out = path.join(dir, 'native.json');
    const r = await bench(['--base-url', server.url, '--backend', 'sglang', '--num-prompts', '6',
      '--random-input-len', '16', '--random-output-len', '6', '--random-range-ratio', '1', '--max-concurrency', '2',
      '--output-file', out]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /Max request concurrency:\s+2\n/);
    const j = JSON.parse(fs.readFileSync(out, 'utf8'));
    checkRun(j, 6, 16, 6);
    assert.deepEqual(j.input_lens, [16, 16, 16, 16, 16, 16]);
    assert.equal(j.total_output_tokens, 36);
    assert.ok(j.concurrency <= 2.05, `concurrency ${j.concurrency} over the limit`);
  });

  it('sglang-oai-chat and non-streaming completions', async () => {
    const chat = path.join(dir, 'chat.json');
    let r = await bench(['--base-url', server.url, '--backend', 'sglang-oai-chat', '--num-prompts', '3',
      '--random-input-len', '12', '--random-output-len', '5', '--output-file', chat]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    checkRun(JSON.parse(fs.readFileSync(chat, 'utf8')), 3, 0, 5);
    const ns = path.join(dir, 'nostream.json');
    r = await bench(['--base-url', server.url, '--disable-stream', '--num-prompts', '3', '--random-input-len', '8',
      '--random-output-len', '4', '--output-file', ns]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    const j = JSON.parse(fs.readFileSync(ns, 'utf8'));
    checkRun(j, 3, 8, 4);
    assert.deepEqual(j.ttfts, j.e2e_latencies);
  });

  it('counts rejected requests as failed, prints the first error and exits non-zero', async () => {
    const out = path.join(dir, 'fail.json');
    const r = await bench(['--base-url', server.url, '--warmup-requests', '0', '--num-prompts', '3',
      '--random-input-len', '8', '--random-output-len', '4', '--extra-request-body', '{"model": "no-such-model"}',
      '--output-file', out]);
    assert.notEqual(r.code, 0);
    assert.match(r.stdout, /Failed requests:\s+3\n/);
    assert.match(r.stdout, /First error: HTTP 404/);
    assert.match(r.stderr, /every request failed/);
    assert.equal(JSON.parse(fs.readFileSync(out, 'utf8')).failed, 3);
    // With a warmup, the same mistake stops the run before the benchmark.
    const w = await bench(['--base-url', server.url, '--num-prompts', '3', '--extra-request-body',
      '{"model": "no-such-model"}']);
    assert.notEqual(w.code, 0);
    assert.match(w.stderr, /warmup request failed: HTTP 404/);
  });
});

describe('bench-serving without a server', () => {
  it('exits non-zero with a clear message when nothing listens', async () => {
    // A port that was free a moment ago.
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    for (const backend of ['sglang-oai', 'sglang-oai-chat', 'sglang']) {
      const r = await bench(['--port', String(port), '--backend', backend, '--num-prompts', '2'], 60000);
      assert.equal(r.killed, false, 'it hung');
      assert.notEqual(r.code, 0, backend);
      assert.match(r.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port}`), r.stderr);
      assert.match(r.stderr, /is the server running\?|warmup request failed/, r.stderr);
    }
  });
});
