import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as E2ee from '../src/e2ee/index.ts';

// The e2ee entry's IndexedDB store in a real browser (Debian's Chromium, as the demo's test uses): what a
// device that is a browser profile keeps must be there after the page is reloaded.

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ENTRY = fileURLToPath(new URL('../src/e2ee/index.ts', import.meta.url));
if (!existsSync(CHROMIUM))
  console.warn(`skipping the IndexedDB store's browser test: no Chromium at ${CHROMIUM}`);

describe.runIf(existsSync(CHROMIUM))('the IndexedDB store, in Chromium', () => {
  let browser: Browser;
  let server: Server;
  let origin: string;
  let bundle: string;
  beforeAll(async () => {
    const built = await build({
      entryPoints: [ENTRY],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      globalName: 'ParleyE2ee',
      logLevel: 'silent',
    });
    bundle = built.outputFiles.map((file) => file.text).join('');
    // IndexedDB needs an origin: an empty page of our own on loopback.
    server = createServer((_request, response) => response.end('<!doctype html><title>store</title>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
  });
  afterAll(async () => {
    await browser.close();
    await new Promise((resolve) => server.close(resolve));
  });

  it('keeps values across a reload, and forgets deleted ones', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(origin);
    await page.addScriptTag({ content: bundle });
    const written = await page.evaluate(async () => {
      const { IndexedDbStore } = (globalThis as unknown as { ParleyE2ee: typeof E2ee }).ParleyE2ee;
      const store = new IndexedDbStore('parley-test');
      await store.set('device', '{"id":"d1"}');
      await store.set('gone', 'soon');
      await store.delete('gone');
      return [await store.get('device'), await store.get('gone')];
    });
    expect(written).toEqual(['{"id":"d1"}', undefined]);

    await page.reload();
    await page.addScriptTag({ content: bundle });
    const read = await page.evaluate(async () => {
      const { IndexedDbStore } = (globalThis as unknown as { ParleyE2ee: typeof E2ee }).ParleyE2ee;
      const store = new IndexedDbStore('parley-test');
      return [await store.get('device'), (await store.get('gone')) ?? 'absent'];
    });
    expect(read).toEqual(['{"id":"d1"}', 'absent']);
    expect(errors).toEqual([]);
    await page.close();
  });
});
