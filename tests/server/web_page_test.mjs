// The web page at "/" in headless Debian Chromium (driven by playwright-core
// over CDP): it loads, sends a message, shows the streamed answer, and shows
// live metrics from /get_server_info.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { npmRequire, startServer } from './harness.mjs';

const CHROMIUM = process.env.MIMOSERVE_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(CHROMIUM))
  throw new Error(`${CHROMIUM} not found: the web page test needs Debian's chromium ` +
    '(scripts/install-deps.sh installs it: apt-get install chromium)');

const { chromium } = npmRequire('playwright-core');

describe('web page', () => {
  let server, browser;
  before(async () => {
    server = await startServer(['--reasoning-parser', 'qwen3', '--max-total-tokens', '20000']);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run'],
    });
  });
  after(async () => {
    await browser?.close();
    const { code } = await server.stop();
    assert.equal(code, 0, server.log());
  });

  it('chats with streaming and shows metrics', async () => {
    const page = await browser.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url + '/');
    assert.equal(await page.title(), 'mimoserve');
    await page.waitForFunction(() => document.getElementById('status').textContent === 'connected');
    assert.match(await page.textContent('#model'), /mimoserve-default/);
    assert.match(await page.textContent('#m-kv-full'), /^0 \/ 20000$/);

    await page.fill('#max-tokens', '24');
    await page.fill('#temperature', '0');  // greedy: the same (full-length) answer every run
    await page.fill('#input', 'Hello! What is the weather like?');
    // Count the streamed updates the page makes to the answer.
    await page.evaluate(() => {
      window.__updates = 0;
      new MutationObserver((records) => (window.__updates += records.length)).observe(document.getElementById('messages'),
        { childList: true, subtree: true, characterData: true });
    });
    await page.click('#send');
    await page.waitForSelector('.msg.assistant[data-state="done"], .msg.error', { timeout: 60000 });
    const state = await page.getAttribute('.msg:last-child', 'data-state');
    assert.equal(state, 'done', await page.textContent('.msg:last-child'));
    assert.equal(await page.textContent('.msg.user'), 'Hello! What is the weather like?');
    const answer = await page.textContent('.msg.assistant .content');
    assert.ok(answer.length > 0, 'the answer is shown');
    assert.match(await page.textContent('.msg.assistant .stats'), /^24 tokens in .* s · prompt \d+/);
    assert.ok(['length', 'stop'].includes(await page.getAttribute('.msg.assistant', 'data-finish')));
    assert.ok(await page.evaluate(() => window.__updates) > 3, 'the answer was shown piece by piece');
    // The reasoning block stays folded (and hidden when there is none).
    assert.equal(await page.$eval('.msg.assistant details', (d) => d.open), false);
    // Metrics poll: the finished request shows up.
    await page.waitForFunction(() => Number(document.getElementById('m-finished').textContent) >= 1);
    assert.deepEqual(errors, []);
  });
});
