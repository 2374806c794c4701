import fc from 'fast-check';
import { oddValue } from './odd-values.ts';

/** The subset of JSON Schema that Parley's request schemas use (OpenAPI 3.1, from TypeBox). */
export interface JsonSchema {
  type?: string | string[];
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  items?: JsonSchema;
  maxItems?: number;
  minItems?: number;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
}

/**
 * Values that real ids take, by the name of the field or parameter that carries them, so that generated
 * requests reach past the "not found" check into the code that does the work.
 */
export type Pools = (name: string) => fc.Arbitrary<unknown> | undefined;

/** A value that conforms to `schema`, for a field called `name`: a pooled id where one fits. */
export function validValue(schema: JsonSchema, name: string, pools: Pools): fc.Arbitrary<unknown> {
  const pooled = pools(name);
  const own = conforming(schema, name, pools);
  return pooled === undefined
    ? own
    : fc.oneof({ weight: 3, arbitrary: pooled }, { weight: 1, arbitrary: own });
}

/**
 * A valid value with one or two of its nodes (the root included) swapped for odd ones: one
 * wrong field in an otherwise good request reaches the code behind validation, where a request wrong
 * everywhere stops at the first check.
 */
export function fuzzedValue(schema: JsonSchema, name: string, pools: Pools): fc.Arbitrary<unknown> {
  return fc
    .tuple(
      validValue(schema, name, pools),
      fc.constantFrom(1, 1, 1, 2),
      fc.array(fc.nat(), { minLength: 2, maxLength: 2 }),
      fc.array(oddValue, { minLength: 2, maxLength: 2 }),
    )
    .map(([value, count, positions, replacements]) => {
      let result = value;
      for (let i = 0; i < count; i++) result = replaceNode(result, positions[i] ?? 0, replacements[i]);
      return result;
    });
}

/** Every node of a JSON value, depth first, as [parent, key] pairs (the root has no parent). */
function nodesOf(value: unknown): [Record<string, unknown> | unknown[] | null, string | number][] {
  const nodes: [Record<string, unknown> | unknown[] | null, string | number][] = [[null, 0]];
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const current = stack.pop();
    if (Array.isArray(current)) {
      current.forEach((child, index) => {
        nodes.push([current, index]);
        stack.push(child);
      });
    } else if (typeof current === 'object' && current !== null) {
      const record = current as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        nodes.push([record, key]);
        stack.push(record[key]);
      }
    }
  }
  return nodes;
}

/** `value` with its node number `position` (modulo the node count) replaced; the input is not changed. */
function replaceNode(value: unknown, position: number, replacement: unknown): unknown {
  const copy = structuredClone(value);
  const nodes = nodesOf(copy);
  const [parent, key] = nodes[position % nodes.length] ?? [null, 0];
  if (parent === null) return replacement;
  (parent as Record<string | number, unknown>)[key] = replacement;
  return copy;
}

function conforming(schema: JsonSchema, name: string, pools: Pools): fc.Arbitrary<unknown> {
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum !== undefined) return fc.constantFrom(...schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union !== undefined) return fc.oneof(...union.map((branch) => validValue(branch, name, pools)));
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'string':
      return stringOf(schema);
    case 'integer':
      return fc.integer({
        min: Math.max(schema.minimum ?? -1000, Number.MIN_SAFE_INTEGER),
        max: Math.min(schema.maximum ?? 1000, Number.MAX_SAFE_INTEGER),
      });
    case 'number':
      return fc.double({ min: schema.minimum ?? -1000, max: schema.maximum ?? 1000, noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array': {
      const items = schema.items ?? {};
      return fc.array(validValue(items, name, pools), {
        minLength: schema.minItems ?? 0,
        maxLength: Math.min(schema.maxItems ?? 5, 5),
      });
    }
    case 'object':
      return objectOf(schema, pools);
    default:
      return oddValue;
  }
}

function stringOf(schema: JsonSchema): fc.Arbitrary<string> {
  if (schema.format === 'uuid') return fc.uuid();
  if (schema.format === 'date-time')
    return fc.date({ noInvalidDate: true }).map((date) => date.toISOString());
  const minLength = schema.minLength ?? 0;
  const maxLength = Math.max(minLength, Math.min(schema.maxLength ?? 40, 40));
  if (schema.pattern !== undefined) {
    return fc
      .stringMatching(new RegExp(schema.pattern))
      .filter((value) => value.length >= minLength && value.length <= (schema.maxLength ?? Infinity));
  }
  return fc.string({ unit: 'grapheme', minLength, maxLength });
}

function objectOf(schema: JsonSchema, pools: Pools): fc.Arbitrary<unknown> {
  const properties = schema.properties ?? {};
  if (Object.keys(properties).length === 0 && schema.additionalProperties !== false) {
    // A free-form object (metadata): any JSON, which the mutation step then salts.
    return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 });
  }
  const required = new Set(schema.required ?? []);
  return fc.record(
    Object.fromEntries(
      Object.entries(properties).map(([key, value]) => [key, validValue(value, key, pools)]),
    ),
    { requiredKeys: [...required].filter((key) => key in properties) },
  );
}
