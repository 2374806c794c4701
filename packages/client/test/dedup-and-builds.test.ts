import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { RealtimeClient, type ParleyEvent, type SocketLike, type WebSocketConstructor } from '../src/node.ts';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));

/** A socket that plays a script of server frames once the client authenticates, and records what it sent. */
function scriptedSocket(frames: object[], sent: string[]): WebSocketConstructor {
  return class implements SocketLike {
    readyState = 1;
    onopen: SocketLike['onopen'] = null;
    onmessage: SocketLike['onmessage'] = null;
    onerror: SocketLike['onerror'] = null;
    onclose: SocketLike['onclose'] = null;
    constructor() {
      setTimeout(() => this.onopen?.({}), 1);
    }
    send(data: string): void {
      sent.push(data);
      if ((JSON.parse(data) as { type: string }).type !== 'auth') return;
      for (const frame of frames) setTimeout(() => this.onmessage?.({ data: JSON.stringify(frame) }), 1);
    }
    close(): void {}
  };
}

describe('the real-time client, on its own', () => {
  it('drops an event it already delivered (a replay overlapping what it had)', async () => {
    const event = {
      type: 'read.updated',
      conversation_id: '019a9b6e-8f2a-7c3e-9d41-5b2f0c7a1e83',
      cursor: 'c1',
      data: { user_id: 'alice', last_read_seq: 3 },
      ts: '2026-12-07T10:00:00.000Z',
    };
    const typing = {
      type: 'typing.started',
      conversation_id: event.conversation_id,
      data: { user_id: 'bob' },
      ts: '2026-12-07T10:00:01.000Z',
    };
    const frames = [
      { type: 'ready', user_id: 'alice', connection_id: 'x', server_time: event.ts, cursor: 'c0' },
      { type: 'event', event },
      { type: 'event', event: { ...event, cursor: 'c1-again' } },
      { type: 'event', event: typing },
      { type: 'event', event: typing },
      { type: 'event', event: { ...event, cursor: 'c2', data: { user_id: 'alice', last_read_seq: 4 } } },
    ];
    const sent: string[] = [];
    const live = new RealtimeClient({
      baseUrl: 'http://127.0.0.1:1',
      token: 't',
      WebSocket: scriptedSocket(frames, sent),
    });
    const received: ParleyEvent[] = [];
    live.on('event', (e) => received.push(e));
    await live.connect();
    await new Promise((resolve) => setTimeout(resolve, 50));
    live.close();
    // The repeat is dropped; ephemeral events (no cursor) are never taken for repeats.
    expect(received.map((e) => e.type)).toEqual([
      'read.updated',
      'typing.started',
      'typing.started',
      'read.updated',
    ]);
    expect(live.cursor).toBe('c2');
    expect(sent.slice(0, 1).map((frame) => JSON.parse(frame) as unknown)).toEqual([
      { type: 'auth', token: 't' },
    ]);
  });
});

describe('the builds', () => {
  /** An entry of the package bundled for browsers: the modules it took in, and the code it made. */
  const bundleForBrowsers = async (entry: string) => {
    const result = await build({
      entryPoints: [`${PACKAGE}/src/${entry}`],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      logLevel: 'silent',
      metafile: true,
    });
    return {
      inputs: Object.keys(result.metafile.inputs),
      code: result.outputFiles.map((file) => file.text).join(''),
    };
  };

  it('bundles for browsers without a Node built-in or ws', async () => {
    const { inputs, code } = await bundleForBrowsers('index.ts');
    expect(inputs.filter((input) => input.includes('node_modules'))).toEqual(
      expect.arrayContaining([expect.stringContaining('openapi-fetch')]),
    );
    expect(inputs.filter((input) => /node_modules\/ws\/|^node:/.test(input))).toEqual([]);
    expect(code).not.toMatch(/from ["']node:|require\(["'](ws|node:)/);
  });

  it('bundles the e2ee entry for browsers too, MLS library included, without a Node built-in', async () => {
    const { inputs, code } = await bundleForBrowsers('e2ee/index.ts');
    expect(inputs).toEqual(expect.arrayContaining([expect.stringContaining('node_modules/ts-mls/')]));
    expect(inputs.filter((input) => /node_modules\/ws\/|^node:/.test(input))).toEqual([]);
    expect(code).not.toMatch(/from ["']node:|require\(["']node:/);
  });

  it('compiles to JavaScript and declarations with tsc, the way it is published', () => {
    const out = execFileSync(
      process.execPath,
      [
        fileURLToPath(import.meta.resolve('typescript/bin/tsc')),
        '-p',
        `${PACKAGE}/tsconfig.build.json`,
        '--noEmit',
      ],
      { encoding: 'utf8' },
    );
    expect(out).toBe('');
  });
});
