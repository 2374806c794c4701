import type { LoggedEvent, StoredEvent } from './events.schemas.ts';

/**
 * A stored event as the contract carries it everywhere (sockets, /v1/sync, webhooks), with the cursor a
 * reader resumes from after it.
 */
export function toLoggedEvent(event: StoredEvent, cursor: string): LoggedEvent {
  // The cast pairs `type` with its `data`, which TypeScript cannot follow through the spread; the event
  // already holds them paired (StoredEvent), so nothing here can mismatch them.
  return {
    type: event.type,
    conversation_id: event.conversationId,
    ...(event.seq === null ? {} : { seq: event.seq }),
    cursor,
    data: event.data,
    ts: event.createdAt.toISOString(),
  } as LoggedEvent;
}
