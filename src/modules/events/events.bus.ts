import { Type, type Static } from 'typebox';

// The bus is an interface the events module defines and the real-time side implements (src/realtime/bus.ts:
// in one process, or over Redis): the event log wakes readers through it, and processes share typing,
// presence and credential changes on it. Messages that come over the network are checked against
// `BusMessage` before any handler sees them: another version of Parley, or anything else publishing on
// the channel, may send what this one does not understand.

const Id = Type.String();

/**
 * What makes cached credentials stale (the auth cache's `CredentialChange`; the hub hands this to it, so
 * TypeScript checks that the two agree).
 */
const CredentialChange = Type.Union([
  Type.Object({ kind: Type.Literal('api_key_revoked'), keyId: Id }),
  Type.Object({ kind: Type.Literal('user_erased'), tenantId: Id, userId: Id }),
  Type.Object({ kind: Type.Literal('tenant_deleted'), tenantId: Id }),
]);

/**
 * How long a presence entry lasts unless renewed, as the announcing process renews it (its
 * PARLEY_PRESENCE_TTL_SECONDS): readers judge the entry by it, not by their own setting (src/realtime/hub.ts).
 * Absent from a version that did not send it.
 */
const PresenceTtl = Type.Optional(Type.Integer({ minimum: 1 }));

/**
 * What processes tell each other. Events themselves live in the database; the bus only wakes readers.
 * Open objects: a field a newer version adds does not make its message invalid here.
 */
export const BusMessage = Type.Union([
  /** The event log of a tenant has new events: read it. */
  Type.Object({ kind: Type.Literal('events'), tenantId: Id }),
  /** Someone started or stopped typing (ephemeral; never stored). */
  Type.Object({
    kind: Type.Literal('typing'),
    tenantId: Id,
    conversationId: Id,
    userId: Id,
    isTyping: Type.Boolean(),
  }),
  /** A process gained a user's first socket, or lost its last one for good (ephemeral). */
  Type.Object({
    kind: Type.Literal('presence'),
    tenantId: Id,
    userId: Id,
    processId: Id,
    isOnline: Type.Boolean(),
    ttlMs: PresenceTtl,
  }),
  /** A process still has sockets of these users (`[tenantId, userId]`): renews its presence entries. */
  Type.Object({
    kind: Type.Literal('presence_renewal'),
    processId: Id,
    users: Type.Array(Type.Tuple([Id, Id])),
    ttlMs: PresenceTtl,
  }),
  /** A key was revoked, a user erased or a tenant deleted: drop what the auth cache holds of it. */
  Type.Object({ kind: Type.Literal('credentials'), change: CredentialChange }),
  /**
   * A request wants the write lease of a tus upload that an earlier request holds (a client resuming after
   * its connection dropped, while the server still reads the old one): the holder lets go.
   */
  Type.Object({ kind: Type.Literal('upload_release'), uploadId: Id }),
]);
export type BusMessage = Static<typeof BusMessage>;

/** Cross-process fan-out. Delivery is best effort: correctness must never depend on it. */
export interface Bus {
  publish(message: BusMessage): void;
  /** Every message published by any process, this one included. Returns the unsubscribe function. */
  subscribe(handler: (message: BusMessage) => void): () => void;
  /** Throws unless the bus can be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
