// The OpenAI-compatible surface driven by the official OpenAI Node SDK (and
// plain fetch where the SDK cannot send what is tested), against the real
// server on the default model. A random model never writes tool or reasoning
// markup, so here tools and thinking are checked where the server handles
// them (template rendering via /v1/tokenize, acceptance, shapes); their
// parsing from model text is covered by server_unit_test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { json, npmRequire, readSse, serverState, startServer, waitIdle } from './harness.mjs';

const openai = npmRequire('openai');
const OpenAI = openai.OpenAI || openai.default || openai;
const KEY = 'test-key-123';
const AUTH = { Authorization: `Bearer ${KEY}` };
const MODEL = 'tiny';
const TOOLS = [{
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Weather of a city',
    parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city'] },
  },
}];
const hello = [{ role: 'user', content: 'Hello, how is the weather in Paris today?' }];

let server, client;

before(async () => {
  server = await startServer(['--served-model-name', MODEL, '--api-key', KEY, '--reasoning-parser', 'qwen3',
    '--tool-call-parser', 'mimo', '--max-total-tokens', '30000', '--context-length', '512',
    '--max-request-bytes', '65536']);
  client = new OpenAI({ baseURL: server.url + '/v1', apiKey: KEY, maxRetries: 0, timeout: 60000 });
});
after(async () => {
  const { code } = await server.stop();
  assert.equal(code, 0, server.log());
});

const greedy = (extra = {}) => ({ model: MODEL, messages: hello, max_tokens: 12, temperature: 0, ...extra });
async function tokenize(body) {
  const r = await json(server.url, '/v1/tokenize', body, AUTH);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

describe('chat completions', () => {
  it('lists the model', async () => {
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), [MODEL]);
    assert.equal((await client.models.retrieve(MODEL)).id, MODEL);
  });

  it('answers without streaming, with usage', async () => {
    const r = await client.chat.completions.create(greedy());
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, MODEL);
    assert.match(r.id, /^chatcmpl-/);
    const c = r.choices[0];
    assert.equal(c.index, 0);
    assert.equal(c.message.role, 'assistant');
    assert.equal(typeof c.message.content, 'string');
    assert.ok('reasoning_content' in c.message, 'the qwen3 parser adds reasoning_content');
    assert.ok(['stop', 'length'].includes(c.finish_reason));
    const u = r.usage;
    assert.ok(u.completion_tokens >= 1 && u.completion_tokens <= 12);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert.equal(typeof u.prompt_tokens_details.cached_tokens, 'number');
    assert.equal(typeof u.completion_tokens_details.reasoning_tokens, 'number');
    // The prompt is the template's rendering of the messages.
    assert.equal(u.prompt_tokens, (await tokenize({ messages: hello })).count);
  });

  it('streams the same greedy answer, then a usage chunk', async () => {
    const whole = await client.chat.completions.create(greedy({ ignore_eos: true }));
    const stream = await client.chat.completions.create(greedy({ ignore_eos: true, stream: true,
      stream_options: { include_usage: true } }));
    const chunks = [];
    for await (const ch of stream) chunks.push(ch);
    assert.equal(chunks[0].object, 'chat.completion.chunk');
    assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
    const text = chunks.flatMap((c) => c.choices.map((x) => x.delta.content || '')).join('');
    assert.equal(text, whole.choices[0].message.content);
    const finals = chunks.filter((c) => c.choices.length && c.choices[0].finish_reason);
    assert.equal(finals.length, 1);
    assert.equal(finals[0].choices[0].finish_reason, 'length');
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.completion_tokens, 12);
    for (const c of chunks) assert.equal(c.id, chunks[0].id);
  });

  it('reuses the prompt prefix from the cache', async () => {
    await client.chat.completions.create(greedy({ max_tokens: 2 }));
    const r = await client.chat.completions.create(greedy({ max_tokens: 2 }));
    assert.ok(r.usage.prompt_tokens_details.cached_tokens > 0, JSON.stringify(r.usage));
  });

  it('returns n choices; greedy ones agree, seeded ones repeat', async () => {
    const g = await client.chat.completions.create(greedy({ n: 2 }));
    assert.equal(g.choices.length, 2);
    assert.deepEqual(g.choices.map((c) => c.index), [0, 1]);
    assert.equal(g.choices[0].message.content, g.choices[1].message.content);
    const s1 = await client.chat.completions.create(greedy({ n: 3, temperature: 1, seed: 42 }));
    const s2 = await client.chat.completions.create(greedy({ n: 3, temperature: 1, seed: 42 }));
    assert.deepEqual(s1.choices.map((c) => c.message.content), s2.choices.map((c) => c.message.content));
    assert.ok(s1.usage.completion_tokens >= 3 && s1.usage.completion_tokens <= 36);
    assert.equal(s1.usage.prompt_tokens, g.usage.prompt_tokens, 'the shared prompt counts once');
  });

  it('stops at a stop string and trims it', async () => {
    const base = await client.chat.completions.create(greedy({ max_tokens: 40, ignore_eos: true }));
    const text = base.choices[0].message.content;
    // A clean 3-character piece from the middle of the greedy answer.
    let at = -1;
    for (let i = 6; i + 3 < text.length; i++) {
      const s = text.slice(i, i + 3);
      if (!s.includes('\uFFFD') && text.indexOf(s) === i) { at = i; break; }
    }
    assert.ok(at > 0, 'no usable stop string in ' + JSON.stringify(text));
    const stop = text.slice(at, at + 3);
    const r = await client.chat.completions.create(greedy({ max_tokens: 40, ignore_eos: true, stop: ['zzzz', stop] }));
    assert.equal(r.choices[0].message.content, text.slice(0, at));
    assert.equal(r.choices[0].finish_reason, 'stop');
    assert.equal(r.choices[0].matched_stop, stop);
  });

  it('returns logprobs in OpenAI\'s shape', async () => {
    const r = await client.chat.completions.create(greedy({ logprobs: true, top_logprobs: 3 }));
    const lp = r.choices[0].logprobs.content;
    assert.equal(lp.length, r.usage.completion_tokens);
    for (const t of lp) {
      assert.equal(typeof t.token, 'string');
      assert.ok(t.logprob <= 0);
      assert.ok(Array.isArray(t.bytes));
      assert.equal(t.top_logprobs.length, 3);
      assert.ok(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob);
      assert.ok(Math.abs(t.logprob - t.top_logprobs[0].logprob) < 1e-5, 'greedy picks the top token');
    }
    const s = await client.chat.completions.create(greedy({ logprobs: true, stream: true }));
    let n = 0;
    for await (const ch of s) for (const c of ch.choices) n += c.logprobs?.content?.length || 0;
    assert.equal(n, r.usage.completion_tokens);
  });

  it('accepts tools and renders them into the prompt (mimo template)', async () => {
    const r = await client.chat.completions.create(greedy({ tools: TOOLS, tool_choice: 'auto' }));
    assert.ok(['stop', 'length', 'tool_calls'].includes(r.choices[0].finish_reason));
    const t = await tokenize({ messages: hello, tools: TOOLS });
    assert.match(t.prompt, /<tools>\n\{"name": "get_weather", "description": "Weather of a city"/);
    assert.equal(r.usage.prompt_tokens, t.count);
    // tool_choice "none": like SGLang, the template gets no tools.
    const none = await tokenize({ messages: hello, tools: TOOLS, tool_choice: 'none' });
    assert.ok(!none.prompt.includes('<tools>'));
    // A named choice always comes back as a call to that function (the
    // output is forced to open it), streamed or not; so does "required"
    // with this single tool (with several, the model names one).
    const named = { type: 'function', function: { name: 'get_weather' } };
    const x = await client.chat.completions.create(greedy({ tools: TOOLS, tool_choice: named }));
    assert.equal(x.choices[0].message.tool_calls[0].function.name, 'get_weather');
    assert.ok(x.usage.prompt_tokens > t.count, 'the call opening is part of the prompt');
    const xs = await client.chat.completions.create(greedy({ tools: TOOLS, tool_choice: named, stream: true }));
    const names = [];
    for await (const ch of xs) for (const c of ch.choices) for (const tc of c.delta.tool_calls || []) if (tc.function?.name) names.push(tc.function.name);
    assert.deepEqual(names, ['get_weather']);
    const req = await client.chat.completions.create(greedy({ tools: TOOLS, tool_choice: 'required' }));
    assert.equal(req.choices[0].message.tool_calls[0].function.name, 'get_weather');
    // A tool round trip: the assistant's call and the tool's answer go back in.
    const history = [...hello,
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
        function: { name: 'get_weather', arguments: '{"city": "Paris", "days": 2}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: 'sunny, 24 C' }];
    const round = await tokenize({ messages: history, tools: TOOLS });
    assert.match(round.prompt, /<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n<\/parameter>/);
    assert.match(round.prompt, /<tool_response>\nsunny, 24 C\n<\/tool_response>/);
    const answer = await client.chat.completions.create(greedy({ messages: history, tools: TOOLS }));
    assert.equal(answer.usage.prompt_tokens, round.count);
  });

  it('honours chat_template_kwargs.enable_thinking', async () => {
    const off = await tokenize({ messages: hello, chat_template_kwargs: { enable_thinking: false } });
    assert.ok(off.prompt.endsWith('<|im_start|>assistant\n<think>\n\n</think>\n\n'), off.prompt);
    const on = await tokenize({ messages: hello });
    assert.ok(on.prompt.endsWith('<|im_start|>assistant\n'));
    const r = await client.chat.completions.create(greedy({ chat_template_kwargs: { enable_thinking: false } }));
    assert.equal(r.choices[0].message.reasoning_content, null, 'thinking off: everything is content');
  });
});

describe('completions', () => {
  it('completes text, streams the same, and returns logprobs', async () => {
    const req = { model: MODEL, prompt: 'The weather in Paris', max_tokens: 6, temperature: 0, ignore_eos: true };
    const r = await client.completions.create(req);
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0].finish_reason, 'length');
    assert.equal(r.usage.completion_tokens, 6);
    const s = await client.completions.create({ ...req, stream: true });
    let text = '';
    for await (const ch of s) text += ch.choices.map((c) => c.text).join('');
    assert.equal(text, r.choices[0].text);
    const l = await client.completions.create({ ...req, logprobs: 2 });
    assert.equal(l.choices[0].logprobs.tokens.length, 6);
    assert.equal(l.choices[0].logprobs.token_logprobs.length, 6);
    assert.ok(Object.keys(l.choices[0].logprobs.top_logprobs[0]).length <= 2);
    const many = await client.completions.create({ ...req, prompt: ['one', 'two'], n: 2 });
    assert.deepEqual(many.choices.map((c) => c.index), [0, 1, 2, 3]);
  });

  it('echoes the prompt with its logprobs, as loglikelihood scoring asks (max_tokens 0)', async () => {
    const prompt = 'The weather in Paris is';
    const ids = (await tokenize({ prompt })).tokens;
    const e = await client.completions.create({ model: MODEL, prompt, max_tokens: 0, echo: true, logprobs: 1,
      temperature: 0 });
    const c = e.choices[0];
    assert.equal(c.text, prompt);
    assert.equal(c.finish_reason, 'length');
    assert.equal(e.usage.completion_tokens, 0);
    assert.equal(c.logprobs.tokens.length, ids.length);
    assert.equal(c.logprobs.token_logprobs[0], null);
    assert.equal(c.logprobs.top_logprobs[0], null);
    assert.deepEqual(c.logprobs.text_offset.slice(0, 2), [0, c.logprobs.tokens[0].length]);
    // The same numbers as /generate's input_token_logprobs.
    const g = await json(server.url, '/generate', { input_ids: ids, sampling_params: { max_new_tokens: 0 },
      return_logprob: true, logprob_start_len: 0 }, AUTH);
    assert.equal(g.status, 200, JSON.stringify(g.body));
    assert.deepEqual(g.body.output_ids, []);
    const input = g.body.meta_info.input_token_logprobs;
    assert.deepEqual(input.map((x) => x[1]), ids);
    assert.deepEqual(input.map((x) => x[0]), c.logprobs.token_logprobs);
    // Echo with a completion: prompt, then the generated text and its logprobs.
    const plain = await client.completions.create({ model: MODEL, prompt, max_tokens: 3, temperature: 0 });
    const both = await client.completions.create({ model: MODEL, prompt, max_tokens: 3, echo: true, logprobs: 0,
      temperature: 0 });
    assert.equal(both.choices[0].text, prompt + plain.choices[0].text);
    assert.equal(both.choices[0].logprobs.tokens.length, ids.length + 3);
    // A start past 0 returns only from there on.
    const from2 = await json(server.url, '/generate', { input_ids: ids, sampling_params: { max_new_tokens: 0 },
      return_logprob: true, logprob_start_len: 2 }, AUTH);
    assert.deepEqual(from2.body.meta_info.input_token_logprobs, input.slice(2));
  });
});

describe('native endpoints', () => {
  it('/generate with text, ids, streaming and logprobs', async () => {
    const sp = { max_new_tokens: 5, temperature: 0, ignore_eos: true };
    const a = await json(server.url, '/generate', { text: 'Hello', sampling_params: sp }, AUTH);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(a.body.output_ids.length, 5);
    assert.equal(typeof a.body.text, 'string');
    assert.deepEqual(a.body.meta_info.finish_reason, { type: 'length', length: 5 });
    for (const k of ['id', 'prompt_tokens', 'completion_tokens', 'cached_tokens', 'e2e_latency'])
      assert.ok(k in a.body.meta_info, k);
    const ids = (await tokenize({ prompt: 'Hello' })).tokens;
    const b = await json(server.url, '/generate', { input_ids: ids, sampling_params: sp, return_logprob: true,
      top_logprobs_num: 2 }, AUTH);
    assert.deepEqual(b.body.output_ids, a.body.output_ids);
    assert.equal(b.body.meta_info.output_token_logprobs.length, 5);
    assert.equal(b.body.meta_info.output_top_logprobs[0].length, 2);
    const res = await fetch(server.url + '/generate', { method: 'POST', headers: AUTH,
      body: JSON.stringify({ text: 'Hello', sampling_params: sp, stream: true }) });
    const events = await readSse(res);
    assert.equal(events.at(-1), '[DONE]');
    const last = events.at(-2);
    assert.deepEqual(last.output_ids, a.body.output_ids);
    assert.equal(last.text, a.body.text);
  });

  it('/abort_request ends a request by rid; /get_load counts requests', async () => {
    const res = await fetch(server.url + '/generate', { method: 'POST', headers: AUTH, body: JSON.stringify({
      rid: 'to-abort', text: 'Hello', stream: true, sampling_params: { max_new_tokens: 100000, ignore_eos: true } }) });
    let aborted = false;
    const events = await readSse(res, async (e) => {
      if (aborted || e === '[DONE]') return;
      aborted = true;
      const load = await json(server.url, '/get_load', undefined, AUTH);
      assert.equal(load.body[0].num_reqs, 1);
      assert.ok(load.body[0].num_tokens > 1, JSON.stringify(load.body));  // its prompt and what it generated
      const a = await json(server.url, '/abort_request', { rid: 'to-abort' }, AUTH);
      assert.equal(a.status, 200);
    });
    const last = events.at(-2);
    assert.equal(last.meta_info.finish_reason.type, 'abort');
    assert.ok(last.meta_info.completion_tokens < 100000);
    // Non-streaming requests end the same way: what was generated, finish_reason abort (not an error).
    const waiting = [
      json(server.url, '/generate', { rid: 'to-abort-2', text: 'Hello',
        sampling_params: { max_new_tokens: 100000, ignore_eos: true } }, AUTH),
      json(server.url, '/v1/chat/completions', { model: 'default', messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 100000, ignore_eos: true }, AUTH),
    ];
    for (let i = 0; i < 100; i++) {
      const load = await json(server.url, '/get_load', undefined, AUTH);
      if (load.body[0].num_reqs === 2 && load.body[0].num_tokens > 40) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await json(server.url, '/abort_request', { rid: 'to-abort-2' }, AUTH)).status, 200);
    const gen = await waiting[0];
    assert.equal(gen.status, 200, JSON.stringify(gen.body));
    assert.equal(gen.body.meta_info.finish_reason.type, 'abort');
    assert.ok(gen.body.meta_info.completion_tokens > 0);
    assert.equal((await json(server.url, '/abort_request', { abort_all: true }, AUTH)).status, 200);
    const chat = await waiting[1];
    assert.equal(chat.status, 200, JSON.stringify(chat.body));
    assert.equal(chat.body.choices[0].finish_reason, 'abort');
    assert.ok(chat.body.usage.completion_tokens > 0);
    const bad = await json(server.url, '/abort_request', {}, AUTH);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'rid');
    await waitIdle(server.url, 30000, AUTH);
    const load = await json(server.url, '/get_load', undefined, AUTH);
    assert.equal(load.body[0].num_reqs, 0);
    assert.equal(load.body[0].num_tokens, 0);  // cached prefixes are not load
  });

  it('health, model and server info, metrics, flush', async () => {
    assert.equal((await fetch(server.url + '/health')).status, 200);
    assert.equal((await fetch(server.url + '/health_generate')).status, 200);
    const info = await json(server.url, '/get_model_info', undefined, AUTH);
    assert.equal(info.body.served_model_name, MODEL);
    assert.equal(info.body.is_generation, true);
    assert.ok(info.body.model_path.length > 0);
    assert.ok(Number.isInteger(info.body.vocab_size) && info.body.vocab_size > 0, 'vocab_size');
    const s = await serverState(server.url, AUTH);
    assert.ok(s.kv_pools.full.capacity > 0 && s.kv_pools.swa.capacity > 0);
    assert.ok(!('avg_spec_accept_length' in s), 'no speculative decoding in this build');
    const m = await (await fetch(server.url + '/metrics')).text();
    for (const name of ['sglang:num_running_reqs', 'sglang:kv_tokens_capacity{model_name="tiny",pool="full"}',
      'sglang:generation_tokens_total', 'sglang:e2e_request_latency_seconds_bucket', 'finish_reason="length"'])
      assert.ok(m.includes(name), name);
    // Earlier tests' requests were timed to their first token and between tokens.
    for (const name of ['sglang:time_to_first_token_seconds_count', 'sglang:inter_token_latency_seconds_count'])
      assert.ok(Number(m.match(new RegExp(name + '\\{[^}]*\\} (\\d+)'))[1]) > 0, name);
    await waitIdle(server.url, 30000, AUTH);
    const f = await fetch(server.url + '/flush_cache', { method: 'POST', headers: AUTH });
    assert.equal(f.status, 200);
    // `curl -X POST .../flush_cache` sends no Content-Length at all.
    const raw = await new Promise((resolve, reject) => {
      const u = new URL(server.url);
      const sock = net.connect(Number(u.port), u.hostname, () =>
        sock.write(`POST /flush_cache HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${KEY}\r\nConnection: close\r\n\r\n`));
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () => resolve(data));
      sock.on('error', reject);
    });
    assert.match(raw, /^HTTP\/1\.1 200/);
  });
});

describe('errors', () => {
  async function expectError(promise, status, param) {
    await assert.rejects(promise, (e) => {
      assert.equal(e.status, status, e.message);
      if (param !== undefined) assert.equal(e.param, param, e.message);
      return true;
    });
  }

  it('400 for invalid values, naming the field', async () => {
    await expectError(client.chat.completions.create(greedy({ temperature: -1 })), 400, 'temperature');
    await expectError(client.chat.completions.create(greedy({ n: 0 })), 400, 'n');
    await expectError(client.chat.completions.create(greedy({ max_tokens: -3 })), 400, 'max_tokens');
    await expectError(client.chat.completions.create({ model: MODEL, messages: [] }), 400, 'messages');
    await expectError(client.chat.completions.create({ model: MODEL, messages: [{ role: 'wizard', content: 'x' }] }),
      400, 'messages[0].role');
    await expectError(client.completions.create({ model: MODEL, prompt: 'x', max_tokens: -1 }), 400, 'max_tokens');
    await expectError(client.completions.create({ model: MODEL, prompt: 'x', logit_bias: { x: 1 } }), 400, 'logit_bias');
    await expectError(client.completions.create({ model: MODEL, prompt: 'x', suffix: 'y' }), 400, 'suffix');
    await expectError(client.chat.completions.create(greedy({ tools: TOOLS,
      tool_choice: { type: 'function', function: { name: 'nope' } } })), 400, 'tool_choice');
    const bad = await json(server.url, '/v1/chat/completions', '{"messages": [', AUTH);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.type, 'invalid_request_error');
    const wrongType = await json(server.url, '/v1/chat/completions', { messages: 'hi' }, AUTH);
    assert.equal(wrongType.status, 400);
  });

  it('400 for a prompt longer than the context', async () => {
    const long = [{ role: 'user', content: 'weather '.repeat(600) }];
    await assert.rejects(client.chat.completions.create(greedy({ messages: long })), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /context length is 512/);
      return true;
    });
  });

  it('401 without the right API key; health stays public', async () => {
    const wrong = new OpenAI({ baseURL: server.url + '/v1', apiKey: 'nope', maxRetries: 0 });
    await expectError(wrong.chat.completions.create(greedy()), 401);
    const none = await json(server.url, '/v1/models');
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'invalid_api_key');
    assert.equal((await json(server.url, '/generate', { text: 'x' })).status, 401);
    assert.equal((await fetch(server.url + '/health')).status, 200);
  });

  it('404 for an unknown model or route', async () => {
    await assert.rejects(client.chat.completions.create(greedy({ model: 'gpt-9' })), (e) => {
      assert.equal(e.status, 404);
      assert.equal(e.code, 'model_not_found');
      return true;
    });
    const r = await json(server.url, '/v1/nowhere', undefined, AUTH);
    assert.equal(r.status, 404);
    assert.equal(r.body.error.code, 'not_found');
  });

  it('413 for a body over --max-request-bytes', async () => {
    const r = await json(server.url, '/v1/chat/completions',
      { model: MODEL, messages: [{ role: 'user', content: 'x'.repeat(70000) }] }, AUTH);
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'request_too_large');
  });

  it('400 from /flush_cache while a request runs', async () => {
    const res = await fetch(server.url + '/v1/chat/completions', { method: 'POST', headers: AUTH,
      body: JSON.stringify(greedy({ max_tokens: 400, ignore_eos: true, stream: true })) });
    let flushed = null;
    await readSse(res, async (ev) => {
      if (flushed === null && ev !== '[DONE]' && ev.choices?.[0]?.delta?.content) {
        flushed = await json(server.url, '/flush_cache', {}, AUTH);
      }
    });
    assert.equal(flushed.status, 400);
    assert.match(flushed.body.error.message, /running or waiting/);
  });
});

describe('queue limit', () => {
  it('503 when the queue is full', async () => {
    const small = await startServer(['--max-queued-requests', '1', '--max-running-requests', '1',
      '--max-total-tokens', '8000']);
    try {
      const c = new OpenAI({ baseURL: small.url + '/v1', apiKey: 'x', maxRetries: 0 });
      const results = await Promise.allSettled(Array.from({ length: 12 }, () =>
        c.chat.completions.create({ model: 'default', messages: hello, max_tokens: 64, ignore_eos: true })));
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const full = results.filter((r) => r.status === 'rejected' && r.reason.status === 503);
      assert.ok(ok >= 1, 'some requests must get through');
      assert.ok(full.length >= 1, 'some requests must be refused with 503');
      assert.equal(ok + full.length, 12, results.filter((r) => r.status === 'rejected').map((r) => r.reason.message).join('\n'));
      assert.equal(full[0].reason.code, 'queue_full');
    } finally {
      const { code } = await small.stop();
      assert.equal(code, 0);
    }
  });
});
