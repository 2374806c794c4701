import { getTableColumns, type Column, type Table } from 'drizzle-orm';

/**
 * A table's row from its JSON form (`to_jsonb(row)` or `row_to_json(row)`, whole or some of its columns),
 * as Drizzle would have returned it from a plain query: keys by the schema's property names, each value
 * through its column's own mapping (timestamps to Dates, bigints to numbers, text arrays as they are).
 * Columns missing from the JSON (the messages' search vector, which no reader needs) are left out. Used by
 * the one-round-trip read functions, which return rows of several tables in one json value.
 */
export function rowFromJson<T extends Table>(table: T, json: Record<string, unknown>): T['$inferSelect'] {
  const row: Record<string, unknown> = {};
  for (const { key, name, column, isJson } of readersOf(table)) {
    if (!(name in json)) continue;
    const value = json[name];
    row[key] =
      value === null || value === undefined || isJson ? (value ?? null) : column.mapFromDriverValue(value);
  }
  return row;
}

interface ColumnReader {
  /** The schema's property name. */
  key: string;
  /** The column's name in SQL, and so in the JSON. */
  name: string;
  column: Column;
  /** JSON columns arrive parsed already: mapping them again would parse a string value a second time. */
  isJson: boolean;
}

const readers = new WeakMap<Table, ColumnReader[]>();

/** A table's columns as `rowFromJson` reads them, worked out once per table rather than once per row. */
function readersOf(table: Table): ColumnReader[] {
  let list = readers.get(table);
  if (list === undefined) {
    list = Object.entries(getTableColumns(table)).map(([key, column]) => ({
      key,
      name: column.name,
      column,
      isJson: column.columnType === 'PgJsonb' || column.columnType === 'PgJson',
    }));
    readers.set(table, list);
  }
  return list;
}

/**
 * JSON text the database built in the exact shape of an API response `T` (its field names, order and
 * types), for a hot read whose answer is large: the server passes it on as the response body instead of
 * parsing it into objects and serializing them again. The route's response schema still documents it,
 * and a test holds the text to that schema.
 */
export type JsonText<T> = string & { readonly responseShape?: T };
