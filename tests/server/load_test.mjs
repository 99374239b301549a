// The server under load and under stress: 64 concurrent streams give the
// same greedy tokens as one at a time; clients that vanish mid-stream free
// their KV; SIGTERM drains (finishes what it can, aborts the rest) and
// exits 0.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, TMP, json, readSse, serverState, startServer, waitIdle } from './harness.mjs';

const WORDS = ['weather', 'Paris', 'coffee', 'tools', 'model', 'river', 'music', 'code'];
const request = (i, extra = {}) => ({
  model: 'default',
  messages: [{ role: 'user', content: `Request ${i}: tell me about the ${WORDS[i % WORDS.length]} ${'and more '.repeat(i % 5)}` }],
  max_tokens: 16,
  temperature: 0,
  ignore_eos: true,
  ...extra,
});

async function streamChat(url, body, onChunk = () => {}, signal = undefined) {
  const res = await fetch(url + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, signal,
    body: JSON.stringify({ ...body, stream: true }),
  });
  assert.equal(res.status, 200);
  let text = '', finish = null, done = false;
  await readSse(res, async (ev) => {
    if (ev === '[DONE]') { done = true; return; }
    if (ev.error) throw new Error(JSON.stringify(ev.error));
    for (const c of ev.choices) {
      text += c.delta.content || '';
      if (c.finish_reason) finish = c.finish_reason;
    }
    await onChunk(ev);
  });
  return { text, finish, done };
}

describe('under load', () => {
  let server;
  before(async () => {
    // A long context, so that requests the test abandons would run for minutes.
    server = await startServer(['--max-running-requests', '64', '--max-total-tokens', '40000',
      '--context-length', '100000']);
  });
  after(async () => {
    const { code } = await server.stop();
    assert.equal(code, 0, server.log());
  });

  it('64 concurrent streams equal the same requests one at a time', async () => {
    const N = 64;
    const together = await Promise.all(Array.from({ length: N }, (_, i) => streamChat(server.url, request(i))));
    for (const r of together) {
      assert.equal(r.finish, 'length');
      assert.ok(r.done);
    }
    // The prefix cache now holds these prompts; flush it so the sequential
    // run computes them afresh too.
    await waitIdle(server.url);
    assert.equal((await fetch(server.url + '/flush_cache', { method: 'POST' })).status, 200);
    for (let i = 0; i < N; i++) {
      const alone = await json(server.url, '/v1/chat/completions', request(i));
      assert.equal(alone.status, 200);
      assert.equal(together[i].text, alone.body.choices[0].message.content, `request ${i}`);
    }
  });

  it('clients that disconnect mid-stream leak no KV', async () => {
    const long = (i) => request(i, { max_tokens: 90000 });
    // In-process clients that abort their fetch after a few chunks...
    const aborted = Array.from({ length: 4 }, async (_, i) => {
      const ac = new AbortController();
      let n = 0;
      await assert.rejects(streamChat(server.url, long(i), () => { if (++n === 3) ac.abort(); }, ac.signal));
    });
    // ...and client processes killed outright.
    const script = `
      const res = await fetch(process.argv[1] + '/v1/chat/completions', { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: process.argv[2] });
      for await (const piece of res.body) { console.log('streaming'); }`;
    const killed = Array.from({ length: 4 }, (_, i) => new Promise((resolve, reject) => {
      const p = spawn(process.execPath, ['--input-type=module', '-e', script, server.url,
        JSON.stringify({ ...long(10 + i), stream: true })], { stdio: ['ignore', 'pipe', 'inherit'] });
      p.stdout.once('data', () => p.kill('SIGKILL'));
      p.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`client exited ${code}`))));
    }));
    await Promise.all([...aborted, ...killed]);
    // Without aborts these would decode 90000 tokens each, for minutes.
    const idle = await waitIdle(server.url, 10000);
    assert.ok(idle.num_finished_reqs > 0);
    const f = await fetch(server.url + '/flush_cache', { method: 'POST' });
    assert.equal(f.status, 200);
    const s = await serverState(server.url);
    assert.equal(s.kv_pools.full.used, 0, JSON.stringify(s.kv_pools));
    assert.equal(s.kv_pools.swa.used, 0, JSON.stringify(s.kv_pools));
    assert.equal(s.kv_pools.full.cached, 0);
    const m = await (await fetch(server.url + '/metrics')).text();
    assert.match(m, /sglang:num_requests_total\{model_name="mimoserve-default",finish_reason="abort"\} [1-9]/);
  });

  it('clients that give up on a non-streaming request free its KV', async () => {
    // cpp-httplib only notices a closed connection when it writes, and a
    // non-streaming response is written at the end: the server watches the
    // socket instead (server/client_watch.h).
    const before = await (await fetch(server.url + '/metrics')).text();
    const aborts = (m) => Number((m.match(/finish_reason="abort"\} (\d+)/) || [0, 0])[1]);
    const bodies = [
      ['/v1/chat/completions', request(20, { max_tokens: 90000 })],
      ['/v1/completions', { model: 'default', prompt: 'Tell me a story', max_tokens: 90000, ignore_eos: true }],
      ['/generate', { text: 'Tell me a story', sampling_params: { max_new_tokens: 90000, ignore_eos: true } }],
    ];
    await Promise.all(bodies.map(async ([path, body]) => {
      const ac = new AbortController();
      const t = setTimeout(() => ac.abort(), 500);
      await assert.rejects(fetch(server.url + path, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal: ac.signal,
      }));
      clearTimeout(t);
    }));
    // Without the watch these would decode 90000 tokens each, for minutes.
    await waitIdle(server.url, 10000);
    assert.equal((await fetch(server.url + '/flush_cache', { method: 'POST' })).status, 200);
    const s = await serverState(server.url);
    assert.equal(s.kv_pools.full.used, 0, JSON.stringify(s.kv_pools));
    const after = await (await fetch(server.url + '/metrics')).text();
    assert.equal(aborts(after) - aborts(before), bodies.length, after);
  });
});

describe('shutdown', () => {
  it('SIGTERM finishes short requests, aborts long ones after the drain timeout, exits 0', async () => {
    const server = await startServer(['--drain-timeout', '5', '--context-length', '100000',
      '--max-total-tokens', '30000']);
    const started = [];
    const streams = [];
    for (let i = 0; i < 5; i++) {
      const long = i >= 3;
      let first;
      started.push(new Promise((r) => (first = r)));
      const body = request(i, { max_tokens: long ? 90000 : 20 });
      streams.push((async () => {
        const res = await fetch(server.url + '/v1/chat/completions', { method: 'POST',
          headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
        let finish = null, error = null;
        const events = await readSse(res, (ev) => {
          first();
          if (ev.error) error = ev.error;
          for (const c of ev.choices || []) if (c.finish_reason) finish = c.finish_reason;
        }).catch((e) => { error = { message: String(e) }; return []; });
        return { long, finish, error, done: events.at(-1) === '[DONE]' };
      })());
    }
    await Promise.all(started);
    server.proc.kill('SIGTERM');
    // New work is refused while draining (or the port is already closed).
    await new Promise((r) => setTimeout(r, 200));
    const late = await fetch(server.url + '/v1/chat/completions', { method: 'POST',
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(request(9)) })
      .then((r) => r.status).catch(() => 'refused');
    assert.ok(late === 503 || late === 'refused', `late request got ${late}`);
    const results = await Promise.all(streams);
    for (const r of results) {
      if (!r.long) {
        assert.equal(r.finish, 'length', JSON.stringify(r));
        assert.ok(r.done);
      } else {
        assert.ok(r.error, 'a long request is aborted: ' + JSON.stringify(r));
      }
    }
    const { code, signal } = await server.exited;
    assert.equal(signal, null);
    assert.equal(code, 0, server.log());
  });
});

describe('flags', () => {
  const run = (args) => new Promise((resolve) => {
    const p = spawn(BIN, ['serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('exit', (code) => resolve({ code, out }));
  });

  it('refuses what this build cannot do, with a message', async () => {
    const cases = [
      [['--tp-size', '8'], /multi-GPU parallelism, which is not in this build/],
      [['--dp-size', '2', '--enable-dp-attention'], /multi-GPU parallelism/],
      [['--speculative-algorithm', 'MEDUSA'], /--speculative-algorithm 'MEDUSA' is not available/],
      [['--speculative-num-steps', '3'], /need --speculative-algorithm EAGLE/],
      [['--enable-mtp', '--speculative-eagle-topk', '4'], /only chain drafting/],
      [['--enable-mtp', '--speculative-num-steps', '3', '--speculative-num-draft-tokens', '8'], /must be --speculative-num-steps \+ 1/],
      [['--attention-backend', 'flashinfer'], /--attention-backend 'flashinfer' is not available/],
      [['--device', 'tpu'], /--device must be cpu, cuda or auto/],
      [['--dtype', 'float16'], /float16 compute is not supported/],
      [['--schedule-policy', 'random'], /--schedule-policy 'random' is not available/],
      [['--model-loader-extra-config', '{"bogus": 1}'], /unknown key 'bogus'/],
      [['--reasoning-parser', 'nope'], /--reasoning-parser 'nope' is not known/],
      [['--tool-call-parser', 'nope'], /--tool-call-parser 'nope' is not known/],
      [['--quantization', 'awq'], /--quantization 'awq' is not available/],
      [['--quantization', 'fp8', '--dtype', 'bfloat16'], /cannot be combined with --dtype bfloat16/],
      [['--quantization', 'fp8'], /stores no FP8 weights/],  // the embedded default model is bf16
    ];
    for (const [args, want] of cases) {
      const { code, out } = await run(args);
      assert.equal(code, 1, `${args.join(' ')}: ${out}`);
      assert.match(out, want, args.join(' '));
    }
  });

  it('refuses numbers out of range, naming the flag', async () => {
    const cases = [
      [['--mem-fraction-static', '2'], /--mem-fraction-static: must be a fraction between 0 and 1, got 2/],
      [['--chunked-prefill-size', '-3'], /--chunked-prefill-size: must be -1 \(no chunking\)/],
      [['--threads', '-2'], /--threads: must be zero or more, got -2/],
      [['--max-total-tokens', 'lots'], /--max-total-tokens: 'lots' is not a number/],
      [['--max-prefill-tokens', '0'], /--max-prefill-tokens: must be positive/],
      [['--tp-size', '0'], /--tp-size, --dp-size, --ep-size and --pp-size must be at least 1/],
      [['--pp-size', '2'], /multi-GPU parallelism/],
      [['--ep-size', '8'], /multi-GPU parallelism, which is not in this build/],
      [['--stream-interval', '0'], /--stream-interval: must be positive/],
      [['--kv-cache-dtype', 'fp8_e5m2'], /only fp8_e4m3 is available/],
      [['--tokenizer-path', '/nonexistent-dir'], /--tokenizer-path: \/nonexistent-dir has no tokenizer.json/],
      [['--tokenizer-path', 'x', '--skip-tokenizer-init'], /contradict each other/],
      [['--kv-cache-dtype', 'int4'], /--kv-cache-dtype must be auto, bfloat16, float32 or fp8_e4m3, got 'int4'/],
      [['--log-requests-level', '4'], /--log-requests-level: must be 0, 1, 2 or 3, got 4/],
      [['--watchdog-timeout', '-1'], /--watchdog-timeout: must be zero or more/],
    ];
    for (const [args, want] of cases) {
      const { code, out } = await run(args);
      assert.notEqual(code, 0, `${args.join(' ')}: ${out}`);
      assert.match(out, want, args.join(' '));
    }
    const port = await new Promise((resolve) => {
      const p = spawn(BIN, ['serve', '--port', '70000'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      p.on('exit', (code) => resolve({ code, out }));
    });
    assert.notEqual(port.code, 0, port.out);
    assert.match(port.out, /--port: must be a port number, 0 to 65535, got 70000/);
  });

  it('streams --stream-interval tokens a chunk, with the --kv-cache-dtype asked for', async () => {
    const server = await startServer(['--stream-interval', '3', '--kv-cache-dtype', 'float32', '--ep-size', '1',
      '--max-total-tokens', '4096']);
    try {
      // The warm-up generation (4 prompt tokens) ran before the port opened.
      const metrics = await (await fetch(server.url + '/metrics')).text();
      assert.match(metrics, /sglang:prompt_tokens_total\{[^}]*\} 4\n/);
      const info = await json(server.url, '/get_server_info');
      assert.equal(info.body.stream_interval, 3);
      assert.equal(info.body.kv_cache_dtype, 'float32');
      assert.equal(info.body.ep_size, 1);
      const body = { text: 'In the beginning', sampling_params: { max_new_tokens: 10, temperature: 0, ignore_eos: true } };
      const whole = await json(server.url, '/generate', body);
      const res = await fetch(server.url + '/generate', { method: 'POST', body: JSON.stringify({ ...body, stream: true }) });
      const events = (await readSse(res)).filter((e) => e !== '[DONE]');
      const counts = events.map((e) => e.meta_info.completion_tokens);
      assert.deepEqual(counts, [1, 4, 7, 10]);
      assert.deepEqual(events.at(-1).output_ids, whole.body.output_ids);
      assert.equal(events.at(-1).text, whole.body.text);
    } finally {
      await server.stop();
    }
  });

  it('serves with an FP8 KV cache (--kv-cache-dtype fp8_e4m3), MTP drafts verified against it', async () => {
    const server = await startServer(['--kv-cache-dtype', 'fp8_e4m3', '--max-total-tokens', '4096',
      '--speculative-algorithm', 'EAGLE', '--speculative-num-steps', '3']);
    try {
      const info = await json(server.url, '/get_server_info');
      assert.equal(info.body.kv_cache_dtype, 'fp8_e4m3');
      const body = { text: 'In the beginning', sampling_params: { max_new_tokens: 24, temperature: 0, ignore_eos: true } };
      const a = await json(server.url, '/generate', body);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.output_ids.length, 24);
      assert.ok(a.body.meta_info.spec_accept_length >= 1);
      const b = await json(server.url, '/generate', body);  // the prefix cache's FP8 KV gives the same tokens
      assert.deepEqual(b.body.output_ids, a.body.output_ids);
    } finally {
      await server.stop();
    }
  });

  it('--skip-tokenizer-init serves token ids only; --tokenizer-path takes the tokenizer from another folder', async () => {
    const skip = await startServer(['--skip-tokenizer-init', '--max-total-tokens', '4096']);
    try {
      const ids = await json(skip.url, '/generate', { input_ids: [1, 2, 3], sampling_params: { max_new_tokens: 4 } });
      assert.equal(ids.status, 200, JSON.stringify(ids.body));
      assert.equal(ids.body.output_ids.length, 4);
      assert.equal((await json(skip.url, '/generate', { text: 'hi' })).status, 400);
      const chat = await json(skip.url, '/v1/chat/completions', { model: 'default', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(chat.status, 400);
      assert.equal((await json(skip.url, '/get_server_info')).body.skip_tokenizer_init, true);
    } finally {
      await skip.stop();
    }
    // A checkpoint without a tokenizer, served with the embedded model's.
    const dir = path.join(TMP, 'no-tokenizer');
    fs.rmSync(dir, { recursive: true, force: true });
    const made = spawnSync(BIN, ['make-checkpoint', '--preset', 'tiny', '--vocab', '4096', '--out', dir]);
    assert.equal(made.status, 0, String(made.stderr));
    const tok = path.join(path.dirname(path.dirname(BIN)), 'models', 'mimo-tiny');
    const bare = await startServer(['--model-path', dir, '--max-total-tokens', '4096']);
    try {
      const chat = await json(bare.url, '/v1/chat/completions', { model: dir, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      assert.equal(chat.status, 400);
    } finally {
      await bare.stop();
    }
    const withTok = await startServer(['--model-path', dir, '--tokenizer-path', tok, '--max-total-tokens', '4096']);
    try {
      const chat = await json(withTok.url, '/v1/chat/completions', { model: dir, messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 });
      assert.equal(chat.status, 200, JSON.stringify(chat.body));
      assert.equal(chat.body.usage.completion_tokens, 2);
    } finally {
      await withTok.stop();
    }
    // A tokenizer with more ids than the model's vocabulary is refused.
    const small = path.join(TMP, 'no-tokenizer-512');
    fs.rmSync(small, { recursive: true, force: true });
    assert.equal(spawnSync(BIN, ['make-checkpoint', '--preset', 'tiny', '--vocab', '512', '--out', small]).status, 0);
    const refused = spawnSync(BIN, ['serve', '--port', '0', '--model-path', small, '--tokenizer-path', tok], { encoding: 'utf8' });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stdout + refused.stderr, /has 2048 tokens, more than the model's vocabulary of 512/);
  });

  it('takes the launch recipe\'s single-GPU flags (as launch_server too)', async () => {
    const server = await startServer(['--trust-remote-code', '--max-running-requests', '128',
      '--chunked-prefill-size', '16384', '--reasoning-parser', 'qwen3', '--tool-call-parser', 'mimo',
      '--model-loader-extra-config', '{"enable_multithread_load":"true","num_threads":4}', '--attention-backend', 'auto',
      '--enable-metrics', '--max-total-tokens', '20000', '--log-requests', '--log-requests-level', '1',
      '--decode-log-interval', '10', '--watchdog-timeout', '600', '--skip-server-warmup', '--enable-cache-report',
      '--allow-auto-truncate']);
    const metrics = await (await fetch(server.url + '/metrics')).text();
    assert.match(metrics, /sglang:prompt_tokens_total\{[^}]*\} 0\n/);  // no warm-up
    const info = await json(server.url, '/get_server_info');
    assert.equal(info.body.max_running_requests, 128);
    assert.equal(info.body.log_requests, true);
    assert.equal(info.body.log_requests_level, 1);
    assert.equal(info.body.decode_log_interval, 10);
    assert.equal(info.body.watchdog_timeout, 600);
    assert.equal(info.body.allow_auto_truncate, true);
    assert.equal(info.body.tool_call_parser, 'mimo');
    assert.equal(info.body.quantization, null);  // the default model is bf16 (FP8 checkpoints report "fp8")
    const { code } = await server.stop();
    assert.equal(code, 0);
    const help = await new Promise((resolve) => {
      const p = spawn(BIN, ['launch_server', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', () => resolve(out));
    });
    assert.match(help, /--speculative-num-draft-tokens/);
  });
});
