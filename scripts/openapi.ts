// `npm run openapi`: prints the OpenAPI 3.1 document the server serves at /openapi.json, built from the
// route schemas on an in-memory database, so it can be committed, diffed or fed to client generators.
import { buildOpenApiDocument } from './openapi-document.ts';

process.stdout.write(`${JSON.stringify(await buildOpenApiDocument(), null, 2)}\n`);
