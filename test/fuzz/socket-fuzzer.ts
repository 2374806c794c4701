import fc from 'fast-check';
import WebSocket from 'ws';
import { ClientFrame } from '../../src/modules/events/events.schemas.ts';
import { textOf } from '../../src/realtime/gateway-socket.ts';
import { ODD_CURSORS, oddText } from './odd-values.ts';
import { fuzzedValue, validValue, type JsonSchema, type Pools } from './schema-arbitrary.ts';
import type { FuzzWorld } from './world.ts';

/** A socket frame or upgrade that broke a rule: an `internal` error frame, or a close with 1011. */
export interface SocketFinding {
  sent: string;
  problem: string;
}

const poolsOf = (world: FuzzWorld): Pools => {
  const byName: Record<string, readonly string[]> = {
    conversation_id: world.pools.conversationIds,
    thread_root_id: world.pools.messageIds,
  };
  return (name) => {
    const pool = byName[name];
    return pool === undefined ? undefined : fc.constantFrom(...pool);
  };
};

/** Frames: each branch of the client frame schema, valid or with one or two odd nodes, or odd JSON text. */
function framesOf(world: FuzzWorld): fc.Arbitrary<string> {
  const pools = poolsOf(world);
  const branches = (ClientFrame as unknown as { anyOf: JsonSchema[] }).anyOf;
  const valid = fc.oneof(...branches.map((branch) => validValue(branch, 'frame', pools)));
  const mutated = fc.oneof(...branches.map((branch) => fuzzedValue(branch, 'frame', pools)));
  return fc.oneof(
    { weight: 2, arbitrary: valid.map((frame) => JSON.stringify(frame)) },
    { weight: 5, arbitrary: mutated.map((frame) => JSON.stringify(frame)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        `${'['.repeat(30_000)}${']'.repeat(30_000)}`,
        `{"type":"send","conversation_id":"${world.pools.conversationIds[0] ?? ''}","text":"\\ud800"}`,
        `{"type":"send","conversation_id":"${world.pools.conversationIds[0] ?? ''}","text":"a","x\\u0000":1}`,
        '{"type":"read","conversation_id":"00000000-0000-0000-0000-000000000000","seq":1e400}',
        '{"__proto__":{"type":"ping"}}',
      ),
    },
  );
}

/** Opens a socket; resolves once it is open, with every frame and the close code recorded. */
function open(url: string) {
  return new Promise<{ socket: WebSocket; frames: string[]; closed: Promise<number> }>((resolve, reject) => {
    const socket = new WebSocket(url);
    const frames: string[] = [];
    socket.on('message', (data: WebSocket.RawData) => frames.push(textOf(data)));
    const closed = new Promise<number>((done) => socket.on('close', (code) => done(code)));
    socket.once('open', () => resolve({ socket, frames, closed }));
    socket.once('error', reject);
  });
}

/** Resolves when `check` holds, or with false after `timeoutMs`. */
async function eventually(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}

/**
 * Sends `runs` generated frames over authenticated sockets (a new one whenever the server closes one, as it
 * does for frames that are no JSON text), then checks that a ping still gets its pong. Frames go one at a
 * time, each after the answer to the previous (or 50 ms), so an error frame is matched to what caused it.
 */
export async function fuzzSocket(options: {
  baseUrl: string;
  world: FuzzWorld;
  seed: number;
  runs: number;
}): Promise<{ sent: number; findings: SocketFinding[] }> {
  const { baseUrl, world, seed, runs } = options;
  const url = `${baseUrl}/v1/ws?access_token=${world.userToken}`;
  const findings: SocketFinding[] = [];
  const frames = fc.sample(framesOf(world), { seed, numRuns: runs });
  let connection = await open(url);
  await eventually(() => connection.frames.some((frame) => frame.includes('"ready"')), 5000);
  for (const text of frames) {
    if (connection.socket.readyState !== WebSocket.OPEN) {
      const code = await connection.closed;
      if (code === 1011) findings.push({ sent: text, problem: 'closed with 1011' });
      connection = await open(url);
      await eventually(() => connection.frames.some((frame) => frame.includes('"ready"')), 5000);
    }
    const before = connection.frames.length;
    connection.socket.send(text);
    await eventually(
      () => connection.frames.length > before || connection.socket.readyState !== WebSocket.OPEN,
      50,
    );
    for (const answer of connection.frames.slice(before)) {
      if (answer.includes('"code":"internal"')) findings.push({ sent: text.slice(0, 300), problem: answer });
    }
  }
  const before = connection.frames.length;
  connection.socket.send(JSON.stringify({ type: 'ping', ref: 'last' }));
  const isAlive = await eventually(
    () => connection.frames.slice(before).some((frame) => frame.includes('"pong"')),
    5000,
  );
  if (!isAlive) findings.push({ sent: 'ping', problem: 'no pong after the fuzzed frames' });
  connection.socket.close();
  return { sent: frames.length, findings };
}

/**
 * Upgrades with odd query strings (forged resume cursors, odd tokens): each must be refused over HTTP with
 * a 4xx, or closed with a 44xx code; never 1011, never a 5xx.
 */
export async function fuzzUpgrades(options: {
  baseUrl: string;
  world: FuzzWorld;
  seed: number;
  runs: number;
}): Promise<{ sent: number; findings: SocketFinding[] }> {
  const { baseUrl, world, seed, runs } = options;
  const queries = fc.sample(
    fc.oneof(
      fc.constantFrom(...ODD_CURSORS).map((cursor) => `access_token=${world.userToken}&cursor=${cursor}`),
      fc.constantFrom(...world.forgedTokens).map((token) => `access_token=${token}`),
      oddText.map((text) => `access_token=${encodeURIComponent(text.toWellFormed())}`),
      oddText.map(
        (text) => `cursor=${encodeURIComponent(text.toWellFormed())}&access_token=${world.userToken}`,
      ),
    ),
    { seed, numRuns: runs },
  );
  const findings: SocketFinding[] = [];
  for (const query of queries) {
    const outcome = await new Promise<string>((resolve) => {
      const socket = new WebSocket(`${baseUrl}/v1/ws?${query}`);
      socket.once('unexpected-response', (_request, response) => {
        resolve(`http ${response.statusCode ?? 0}`);
        socket.terminate();
      });
      socket.once('error', () => resolve('error'));
      socket.once('close', (code) => resolve(`close ${code}`));
      // Accepted: authenticated and ready (a valid cursor) is as good an answer as a refusal.
      socket.on('message', (data: WebSocket.RawData) => {
        if (textOf(data).includes('"ready"')) {
          resolve('ready');
          socket.close();
        }
      });
    });
    if (/^http 5|^close 1011/.test(outcome)) findings.push({ sent: query.slice(0, 300), problem: outcome });
  }
  return { sent: queries.length, findings };
}
