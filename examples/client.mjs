// A minimal Parley real-time client: prints every event and resumes without gaps after a disconnect.
//   PARLEY_TOKEN=<token> [PARLEY_URL=http://127.0.0.1:3000] [PARLEY_CURSOR=<cursor>] node examples/client.mjs
// Protocol: docs/REALTIME.md. The only dependency is `ws` (already a dependency of Parley).
import WebSocket from 'ws';

const token = process.env.PARLEY_TOKEN;
if (!token) {
  console.error('set PARLEY_TOKEN to a user token (POST /v1/users/{id}/tokens)');
  process.exit(1);
}
const wsBase = (process.env.PARLEY_URL ?? 'http://127.0.0.1:3000').replace(/^http/, 'ws');
// The cursor of the last event received: reconnecting with it replays what was missed, each event once.
let cursor = process.env.PARLEY_CURSOR || null;

function connect() {
  const url = new URL('/v1/ws', wsBase);
  if (cursor) url.searchParams.set('cursor', cursor);
  const socket = new WebSocket(url);
  // The token goes in the first frame rather than the URL: a proxy in front may log URLs.
  socket.on('open', () => socket.send(JSON.stringify({ type: 'auth', token })));
  socket.on('message', (raw) => {
    const frame = JSON.parse(raw.toString());
    if (frame.type === 'ready') {
      // `ready` comes first: on a resume it repeats our own cursor, else it is the present. Cursors only
      // move forward, so keeping the latest one received is always right.
      cursor = frame.cursor;
      console.log(`ready: user ${frame.user_id}, connection ${frame.connection_id}`);
    } else if (frame.type === 'event') {
      const { event } = frame;
      if (event.cursor) cursor = event.cursor; // typing and presence are ephemeral and carry none
      const { data } = event;
      const text = event.type.startsWith('message.')
        ? `${data.sender_id}: ${data.text ?? '(deleted)'}`
        : JSON.stringify(data);
      console.log(
        `${event.ts} ${event.type} ${event.conversation_id}${event.seq ? ` #${event.seq}` : ''} ${text}`,
      );
    } else if (frame.type === 'error') {
      console.error(`error ${frame.code}: ${frame.detail}`);
    }
  });
  socket.on('close', (code, reason) => {
    // 4410: the cursor is older than the event log; reload state over HTTP, then start without one.
    if ([4400, 4401, 4403, 4410, 1007, 1009].includes(code)) {
      console.error(`refused (${code} ${reason}); not reconnecting`);
      process.exit(1);
    }
    console.error(`closed (${code} ${reason}); reconnecting in 1 s`);
    setTimeout(connect, 1000);
  });
  socket.on('error', (error) => console.error(`socket error: ${error.message}`)); // 'close' follows
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    console.log(`last cursor: ${cursor}`); // PARLEY_CURSOR=<this> resumes where this run stopped
    process.exit(0);
  });
}
connect();
