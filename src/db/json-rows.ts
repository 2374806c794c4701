import { getTableColumns, type Table } from 'drizzle-orm';

/**
 * A table's row from its JSON form (`to_jsonb(row)` or `row_to_json(row)`, whole or some of its columns),
 * as Drizzle would have returned it from a plain query: keys by the schema's property names, each value
 * through its column's own mapping (timestamps to Dates, bigints to numbers, text arrays as they are).
 * Columns missing from the JSON (the messages' search vector, which no reader needs) are left out. Used by
 * the one-round-trip read functions, which return rows of several tables in one json value.
 */
export function rowFromJson<T extends Table>(table: T, json: Record<string, unknown>): T['$inferSelect'] {
  const row: Record<string, unknown> = {};
  for (const [key, column] of Object.entries(getTableColumns(table))) {
    if (!(column.name in json)) continue;
    const value = json[column.name];
    // JSON columns arrive parsed already: mapping them again would parse a string value a second time.
    const isJson = column.columnType === 'PgJsonb' || column.columnType === 'PgJson';
    row[key] =
      value === null || value === undefined || isJson ? (value ?? null) : column.mapFromDriverValue(value);
  }
  return row;
}
