import type { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import * as ws from 'ws';
import { encodeTextFrame } from '../src/realtime/frames.ts';

// ws's frame parser (a named export of its ES module); @types/ws does not declare it.
const { Receiver } = ws as unknown as {
  Receiver: new (options: { isServer: boolean; maxPayload: number }) => Writable;
};

/** Parses bytes as a WebSocket client would (ws's own receiver), returning the text messages in them. */
function receive(bytes: Buffer): Promise<{ text: string; isBinary: boolean }> {
  return new Promise((resolve, reject) => {
    const receiver = new Receiver({ isServer: false, maxPayload: 1024 * 1024 });
    receiver.on('message', (data: Buffer, isBinary: boolean) => resolve({ text: data.toString(), isBinary }));
    receiver.on('error', reject);
    receiver.write(bytes);
  });
}

describe('encodeTextFrame', () => {
  it.each([0, 5, 125, 126, 200, 65_535, 65_536, 200_000])(
    'frames a %i-byte payload as one text frame a client reads back intact',
    async (length) => {
      const text = Array.from({ length }, (_, index) => 'abcdefghij'[index % 10]).join('');
      expect(await receive(encodeTextFrame(Buffer.from(text)))).toEqual({ text, isBinary: false });
    },
  );

  it('frames multi-byte UTF-8 by its byte length', async () => {
    const text = '{"text":"héllo 👋 世界"}'.repeat(20);
    expect(await receive(encodeTextFrame(Buffer.from(text)))).toEqual({ text, isBinary: false });
  });
});
