import { ERRORS } from '@tus/utils';

/** Whether a tus store said there is no such upload (its errors are `{ status_code, body }` objects). */
export function isTusNotFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const status = (error as { status_code?: unknown }).status_code;
  return status === ERRORS.FILE_NOT_FOUND.status_code || status === ERRORS.FILE_NO_LONGER_EXISTS.status_code;
}
