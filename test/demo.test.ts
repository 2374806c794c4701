import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_ASSETS_DIR } from '../src/modules/demo/demo.routes.ts';
import { buildTestApp, type TestApp } from './helpers/app.ts';
import { createTestDatabase } from './helpers/database.ts';
import { ROOT } from './helpers/processes.ts';

// The web demo (/demo/), end to end in a real browser: Debian's Chromium driven by playwright-core, two
// browser contexts signed in as two users, chatting through the real server. Each user's page is saved as
// a screenshot in test-results/demo/ (CI keeps it as an artifact).

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SCREENSHOTS = path.join(ROOT, 'test-results', 'demo');
const hasChromium = existsSync(CHROMIUM);
const isBuilt = existsSync(path.join(DEMO_ASSETS_DIR, 'index.html'));
const missing = !hasChromium
  ? `no Chromium at ${CHROMIUM} (apt-get install chromium)`
  : !isBuilt
    ? 'the demo is not built (npm run build)'
    : null;
if (missing !== null) console.warn(`skipping the web demo's browser test: ${missing}`);

// CI installs Chromium (.ci/run): there, a missing browser fails rather than skips.
describe.runIf(missing !== null && process.env.CI === 'true')('the web demo, in CI', () => {
  it('has Chromium and the built demo', () => {
    expect(missing).toBeNull();
  });
});

describe.runIf(missing === null)('the web demo, in Chromium', () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  beforeAll(async () => {
    t = await buildTestApp(await createTestDatabase(), { demo: { enabled: true } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address();
    if (typeof address !== 'object' || address === null) throw new Error('not listening');
    base = `http://127.0.0.1:${address.port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      // As root in a sandbox, on a machine with no network but loopback: no sandbox, no background traffic.
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser.close();
    await t.app.close();
    await t.database.drop();
  });

  const signIn = async (userId: string): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${base}/demo`);
    await page.getByTestId(`sign-in-${userId}`).click();
    await expect.poll(() => page.getByTestId('status').textContent()).toBe('live');
    expect(errors).toEqual([]);
    return page;
  };

  /** A demo user signed in through the demo's own sign-in, over HTTP: the channel general, and a send to it. */
  const signInOverHttp = async (userId: string) => {
    const session = await t.app.inject({
      method: 'POST',
      url: '/demo/session',
      payload: { user_id: userId },
    });
    const headers = { authorization: `Bearer ${session.json<{ token: string }>().token}` };
    const conversations = await t.app.inject({ method: 'GET', url: '/v1/conversations', headers });
    const general =
      conversations.json<{ data: { id: string; name: string }[] }>().data.find((c) => c.name === 'general')
        ?.id ?? '';
    const sendToGeneral = (text: string) =>
      t.app.inject({
        method: 'POST',
        url: `/v1/conversations/${general}/messages`,
        headers,
        payload: { text },
      });
    return { general, sendToGeneral };
  };

  const messageTexts = (page: Page) => page.getByTestId('timeline').getByTestId('text').allTextContents();

  it('lets two users chat live: messages, badges, typing, reactions, threads, edits, receipts, search, pictures', async () => {
    const alice = await signIn('alice');
    const bob = await signIn('bob');

    // Both see the seeded conversations; alice opens the group and writes.
    await alice.getByTestId('conversation-design').click();
    await expect.poll(() => alice.getByTestId('conversation-title').textContent()).toBe('design');
    // Bob reads the group, then moves to the channel.
    await bob.getByTestId('conversation-design').click();
    await expect.poll(() => bob.getByTestId('conversation-title').textContent()).toBe('design');
    await expect.poll(() => bob.getByTestId('conversation-design').getByTestId('unread').count()).toBe(0);
    await bob.getByTestId('conversation-general').click();
    await expect.poll(() => bob.getByTestId('conversation-title').textContent()).toBe('#general');

    await alice.getByTestId('composer').fill('Hello @bob, this is the web demo');
    await alice.getByTestId('send').click();
    await expect.poll(() => messageTexts(alice)).toContain('Hello @bob, this is the web demo');

    // Bob, in another conversation, gets an unread badge and a mention badge on "design".
    const design = bob.getByTestId('conversation-design');
    await expect.poll(() => design.getByTestId('unread').textContent()).toBe('1');
    await expect.poll(() => design.getByTestId('mentions').textContent()).toBe('@1');
    await design.click();
    await expect.poll(() => messageTexts(bob)).toContain('Hello @bob, this is the web demo');
    await expect.poll(() => design.getByTestId('unread').count()).toBe(0);

    // Alice sees that bob read it.
    await expect
      .poll(() => alice.getByTestId('receipts').textContent(), { timeout: 10_000 })
      .toBe('Seen by Bob Chen');

    // Bob types: alice sees it; bob answers.
    await bob.getByTestId('composer').pressSequentially('On my way', { delay: 20 });
    await expect.poll(() => alice.getByTestId('typing').textContent()).toBe('Bob Chen is typing…');
    await bob.getByTestId('composer').press('Enter');
    await expect.poll(() => messageTexts(alice)).toContain('On my way');
    await expect.poll(() => alice.getByTestId('typing').textContent()).toBe('');

    // Bob reacts to alice's message; alice sees the reaction.
    const hello = (page: Page) =>
      page.getByTestId('timeline').getByTestId('message').filter({ hasText: 'this is the web demo' });
    await hello(bob).hover();
    await hello(bob).getByTestId('react-👍').click();
    await expect.poll(() => hello(alice).getByTestId('reactions').textContent()).toBe('👍 1');

    // Bob replies in a thread; alice sees the reply count, opens the thread and sees the reply.
    await hello(bob).hover();
    await hello(bob).getByTestId('reply').click();
    await bob.getByTestId('thread-composer').fill('Threads work too');
    await bob.getByTestId('thread-send').click();
    await expect.poll(() => hello(alice).getByTestId('replies').textContent()).toBe('1 reply');
    await hello(alice).getByTestId('replies').click();
    await expect
      .poll(() => alice.getByTestId('thread').getByTestId('text').allTextContents())
      .toContain('Threads work too');

    // Alice edits her message; bob sees the new text, marked edited.
    await hello(alice).hover();
    await hello(alice).getByTestId('edit').click();
    await alice.getByTestId('edit-text').fill('Hello @bob, this is the web demo (edited)');
    await alice.getByTestId('save-edit').click();
    await expect.poll(() => messageTexts(bob)).toContain('Hello @bob, this is the web demo (edited)');
    await expect.poll(() => hello(bob).getByTestId('edited').count()).toBe(1);

    // Search finds it.
    await bob.getByTestId('search').fill('web demo');
    await bob.getByTestId('search').press('Enter');
    await expect.poll(() => bob.getByTestId('search-result').count()).toBe(1);
    await bob.getByTestId('search-result').click();

    // Alice attaches a picture: uploaded, processed in the background, shown to bob as a thumbnail that loads.
    const picture = await sharp({
      create: { width: 640, height: 360, channels: 3, background: { r: 75, g: 92, b: 230 } },
    })
      .png()
      .toBuffer();
    await alice.getByTestId('composer').fill('The new header image');
    await alice
      .getByTestId('attach')
      .setInputFiles({ name: 'header.png', mimeType: 'image/png', buffer: picture });
    const image = bob.getByTestId('timeline').getByTestId('attachment-image');
    await expect.poll(() => image.count(), { timeout: 20_000 }).toBe(1);
    await expect
      .poll(() => image.evaluate((element: { naturalWidth: number }) => element.naturalWidth), {
        timeout: 10_000,
      })
      .toBe(256);
    await expect.poll(() => messageTexts(bob)).toContain('The new header image');

    mkdirSync(SCREENSHOTS, { recursive: true });
    await alice.screenshot({ path: path.join(SCREENSHOTS, 'alice.png') });
    await bob.screenshot({ path: path.join(SCREENSHOTS, 'bob.png') });
    expect(existsSync(path.join(SCREENSHOTS, 'alice.png'))).toBe(true);
  }, 120_000);

  it('loads older messages as the timeline is scrolled up', async () => {
    const carol = await signIn('carol');
    await carol.getByTestId('conversation-general').click();
    // 45 more messages in general, sent by dave over HTTP.
    const { sendToGeneral } = await signInOverHttp('dave');
    for (let i = 1; i <= 45; i++) expect((await sendToGeneral(`filler ${i}`)).statusCode).toBe(201);
    await expect.poll(() => messageTexts(carol)).toContain('filler 45');
    await carol.getByTestId('conversation-general').click(); // reopen: the latest 30 only
    await expect.poll(async () => (await messageTexts(carol)).length).toBe(30);
    await carol.getByTestId('timeline').evaluate((element: { scrollTop: number }) => {
      element.scrollTop = 0;
    });
    await expect.poll(async () => (await messageTexts(carol)).length).toBe(47);
    expect((await messageTexts(carol))[0]).toBe(
      'Welcome to the Parley demo! Sign in as someone else in another window.',
    );
  }, 60_000);

  it('keeps a message that arrives while the conversation it opens is still loading', async () => {
    const bob = await signIn('bob');
    const { general, sendToGeneral } = await signInOverHttp('dave');
    // The history page of general is read by the server now, before the new message exists, and handed to
    // the page only once that message has reached bob's socket.
    let release = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let fetched = () => {};
    const isFetched = new Promise<void>((resolve) => (fetched = resolve));
    await bob.route(`**/v1/conversations/${general}/messages?*`, async (route) => {
      const response = await route.fetch();
      fetched();
      await released;
      await route.fulfill({ response });
    });
    await bob.getByTestId('conversation-general').click();
    await isFetched;
    expect((await sendToGeneral('sent while the page was loading')).statusCode).toBe(201);
    await expect.poll(() => messageTexts(bob)).toContain('sent while the page was loading');
    release();
    await expect.poll(async () => (await messageTexts(bob)).length).toBeGreaterThan(1);
    expect(await messageTexts(bob)).toContain('sent while the page was loading');
    await bob.unrouteAll();
  });
});
