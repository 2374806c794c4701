import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { listenForSockets, useTestApp } from './helpers/app.ts';
import { createTenant } from './helpers/factories.ts';
import { ROOT } from './helpers/processes.ts';

// examples/sdk-walkthrough.ts is the README's walk-through done with the client SDK, imported as a user of
// the package would (`@parley/client`, its built files): run against a real server, it must do every step.

const t = useTestApp();

describe('examples/sdk-walkthrough.ts', () => {
  it('walks through users, tokens, a group, live events, the outbox, read state, search and sync', async () => {
    const url = (await listenForSockets(t)).replace(/^ws/, 'http');
    const tenant = await createTenant(t);
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/sdk-walkthrough.ts'], {
      cwd: ROOT,
      env: { ...process.env, PARLEY_URL: url, PARLEY_API_KEY: tenant.apiKey.secret },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    for (const line of [
      'alice: I am alice (Alice)',
      'bob: connected as bob',
      'bob (live): #1 alice: Hello @bob, this came through the SDK',
      'bob: reply is pending',
      'bob: reply is sent as #2',
      'bob (live): #2 bob: Hi Alice! Sent over the socket.',
      'alice: the message has 1 earlier version(s)',
      'alice: 0 unread after marking the group read',
      'alice: search "socket" found 1 message(s)',
      'alice: a conversation she cannot see is 404 not_found',
      'bob: /v1/sync since connecting: message.created, message.created',
      'done',
    ]) {
      expect(stdout).toContain(line);
    }
  }, 60_000);
});
