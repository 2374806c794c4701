import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

const shared: Options = {
  allErrors: true,
  useDefaults: true,
  removeAdditional: false,
  addUsedSchema: false,
  strict: false,
};

function createAjv(options: Options): Ajv {
  const ajv = new Ajv({ ...shared, ...options });
  addFormats(ajv);
  return ajv;
}

/**
 * Request validation. Bodies are JSON and get no type coercion: `"5"` is not 5, and `""` does not become
 * null. Query strings, params and headers are text, so they are coerced to the declared types. Every
 * problem is reported at once; unknown properties are rejected rather than silently dropped.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<FastifySchema> {
  const bodyAjv = createAjv({ coerceTypes: false });
  const textAjv = createAjv({ coerceTypes: 'array' });
  return ({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);
}
