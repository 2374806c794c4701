import { Parser } from '@asyncapi/parser';
import { describe, expect, it } from 'vitest';
import { clientFrameTypes, eventTypes, serverFrameTypes } from '../src/modules/events/events.asyncapi.ts';
import { useTestApp } from './helpers/app.ts';

const t = useTestApp();
/** DiagnosticSeverity.Error is 0 (@stoplight/types; the parser's diagnostics use another copy of that enum). */
const isError = new Set<number>([0]);

describe('GET /asyncapi.json', () => {
  it('serves, without credentials, a valid AsyncAPI 3.0 document listing every frame and event type', async () => {
    const response = await t.app.inject({ method: 'GET', url: '/asyncapi.json' });
    expect(response.statusCode).toBe(200);
    const served = response.json<{ asyncapi: string }>();
    expect(served.asyncapi).toBe('3.0.0');

    const { document, diagnostics } = await new Parser().parse(structuredClone(served));
    // Errors fail; warnings and hints (a newer AsyncAPI version exists) do not.
    expect(diagnostics.filter((diagnostic) => isError.has(diagnostic.severity))).toEqual([]);
    if (document === undefined) throw new Error('the parser returned no document');

    const contract = [...clientFrameTypes(), ...serverFrameTypes(), ...eventTypes()];
    const listed = document
      .messages()
      .all()
      .map((message) => message.name());
    expect(listed.sort()).toEqual([...contract].sort());
    expect(new Set(contract).size).toBe(contract.length);
    expect(eventTypes()).toEqual(
      expect.arrayContaining(['message.created', 'read.updated', 'presence.changed']),
    );
    expect(clientFrameTypes().sort()).toEqual([
      'auth',
      'ping',
      'read',
      'send',
      'typing.start',
      'typing.stop',
    ]);
    expect(serverFrameTypes().sort()).toEqual(['ack', 'error', 'pong', 'ready']);

    const receive = document
      .operations()
      .filterByReceive()
      .flatMap((operation) => operation.messages().all());
    expect(receive.map((message) => message.name()).sort()).toEqual([...clientFrameTypes()].sort());
  });
});
