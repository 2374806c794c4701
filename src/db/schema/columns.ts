import { timestamp } from 'drizzle-orm/pg-core';

/** A point in time: `timestamptz` to the millisecond, as every table of the schema keeps them. */
export const timestamptz = (name: string) => timestamp(name, { withTimezone: true, precision: 3 });
