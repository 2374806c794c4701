import { Type } from 'typebox';

/** User ids are the tenant's own: 1–128 characters of `[A-Za-z0-9_.@:-]`. */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.@:-]{1,128}$/;

/** Schema of a user id, for params, bodies and responses. */
export const UserIdSchema = Type.String({
  pattern: '^[A-Za-z0-9_.@:-]{1,128}$',
  minLength: 1,
  maxLength: 128,
  description: "The tenant's own user id",
  examples: ['alice'],
});

/** True when `value` is a well-formed user id. */
export function isUserId(value: string): boolean {
  return USER_ID_PATTERN.test(value);
}
