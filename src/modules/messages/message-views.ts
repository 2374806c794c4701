import type { TenantScope } from '../../db/tenant-scope.ts';
import { summarizeReactions } from '../reactions/reactions.repository.ts';
import type { StoredMessage } from './messages.repository.ts';
import { toMessageView } from './messages.presenter.ts';
import type { MessageView } from './messages.schemas.ts';
import type { FileLinker } from '../attachments/file-linker.ts';

// Messages as one viewer sees them: what the view needs beyond the rows (their reactions) is read here, in
// the caller's transaction, and the pure presenter shapes it.

/** Messages as `viewerId` sees them, reactions aggregated for the whole batch in one query. */
export async function loadMessageViews(
  scope: TenantScope,
  viewerId: string,
  rows: StoredMessage[],
  links: FileLinker,
): Promise<MessageView[]> {
  const reactions = await summarizeReactions(
    scope,
    rows.map((row) => row.id),
    viewerId,
  );
  return rows.map((row) => toMessageView(row, reactions.get(row.id) ?? [], links));
}

/** One message as `viewerId` sees it. */
export async function loadMessageView(
  scope: TenantScope,
  viewerId: string,
  row: StoredMessage,
  links: FileLinker,
): Promise<MessageView> {
  const [view] = await loadMessageViews(scope, viewerId, [row], links);
  if (!view) throw new Error('presenting one message gave none');
  return view;
}
