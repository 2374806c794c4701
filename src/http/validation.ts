import SerializerSelector from '@fastify/fast-json-stringify-compiler';
import { Ajv, type Options, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';
import { AppError } from '../errors.ts';
import type { App } from './app-types.ts';
import {
  findUnstorableText,
  isJsonDeeperThan,
  MAX_JSON_DEPTH,
  UNSTORABLE_TEXT_MESSAGE,
} from './input-text.ts';

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
 * problem is reported at once; unknown properties are rejected rather than silently dropped. Before any
 * schema, every string and key of every part must be text PostgreSQL can store (src/http/input-text.ts):
 * one rule for all fields, so no route's field can carry a NUL or a lone surrogate to the database.
 */
export function createValidatorCompiler(): FastifySchemaCompiler<FastifySchema> {
  const bodyAjv = createAjv({ coerceTypes: false });
  const textAjv = createAjv({ coerceTypes: 'array' });
  return ({ schema, httpPart }) => {
    const ajv = httpPart === 'body' ? bodyAjv : textAjv;
    // Compiled on first use, not at start-up: compiling every route's schemas was a fifth of the time
    // `npm start` took to be ready. Fastify reads a failed validation's `errors` off the function.
    let compiled: ValidateFunction | undefined;
    const validate = (data: unknown): boolean => {
      const unstorable = findUnstorableText(data);
      if (unstorable !== null) {
        validate.errors = [
          {
            instancePath: unstorable,
            schemaPath: '#',
            keyword: 'storableText',
            params: {},
            message: UNSTORABLE_TEXT_MESSAGE,
          },
        ];
        return false;
      }
      compiled ??= ajv.compile(schema as object);
      const isValid = compiled(data);
      validate.errors = compiled.errors;
      return isValid;
    };
    validate.errors = null as ValidateFunction['errors'];
    return validate;
  };
}

/**
 * Response serializers (fast-json-stringify, Fastify's own), compiled on first use like the validators.
 * Passed as `schemaController.compilersFactory.buildSerializer`.
 */
export function buildLazySerializer(
  externalSchemas?: unknown,
  options?: Parameters<SerializerSelector.SerializerFactory>[1],
): SerializerSelector.SerializerCompiler {
  const compile = SerializerSelector()(externalSchemas, options);
  return (route) => {
    let serialize: SerializerSelector.Serializer | undefined;
    return (data: unknown) => (serialize ??= compile(route))(data);
  };
}

/**
 * JSON bodies, parsed as Fastify parses them by default (`__proto__` and `constructor.prototype` refused),
 * once their nesting is known to be at most MAX_JSON_DEPTH: a deeper body is refused before anything (the
 * idempotency hash, a route without a body schema) walks it recursively.
 */
export function registerJsonParser(app: App): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (isJsonDeeperThan(text, MAX_JSON_DEPTH)) {
      done(
        new AppError(
          'validation_failed',
          `the body nests arrays and objects deeper than ${MAX_JSON_DEPTH} levels`,
          [{ path: '/body', message: `must nest at most ${MAX_JSON_DEPTH} levels deep` }],
        ),
        undefined,
      );
      return;
    }
    void parseJson(request, text, done);
  });
}
