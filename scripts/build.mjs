// `npm run build` (and `prepare`, which `npm ci` runs): compiles the client SDK and builds the web demo
// (below), and bundles the server (src/main.ts and everything it
// imports, node_modules included) into one file, dist/main.mjs, and the operator CLI (src/cli.ts) into
// dist/cli.mjs, copies the SQL migrations and the database's function sources (src/db/functions) beside
// them, and stamps the build so bin/start.mjs and bin/parley.js know it is current (bin/built.mjs). One file
// instead of about 1,200 modules: resolving, reading and linking those took about half a second of every
// start (docs/PERFORMANCE.md), and compiling them through tsx 1.3 s of every CLI command. Type checking is
// `npm run typecheck`; esbuild only strips the types.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const dist = path.join(root, 'dist');
rmSync(dist, { recursive: true, force: true });
await build({
  entryPoints: { main: path.join(root, 'src', 'main.ts'), cli: path.join(root, 'src', 'cli.ts') },
  outdir: dist,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // Left out, loaded from node_modules as usual: packages that read their own files at run time (PGlite's
  // WebAssembly and data, the docs UI's static files, pino's worker-thread transports), pg's optional
  // native binding, sharp (it loads libvips' native binding for the platform at run time) and the AWS SDK
  // (S3 storage only: megabytes a deployment on the local disk would parse at every start for nothing).
  external: [
    '@electric-sql/pglite',
    '@electric-sql/pglite/*',
    '@fastify/swagger-ui',
    'pino',
    'pg-native',
    'sharp',
    '@aws-sdk/*',
  ],
  // Bundled CommonJS modules call require() for Node's built-ins; an ES module has no require of its own.
  banner: {
    js: "import { createRequire as parleyCreateRequire } from 'node:module'; const require = parleyCreateRequire(import.meta.url);",
  },
});
// src/db/client.ts finds its migrations, and src/db/sql-sources.ts its function sources, beside itself: in
// the bundle, beside dist/main.mjs.
for (const folder of ['migrations', 'functions']) {
  cpSync(path.join(root, 'src', 'db', folder), path.join(dist, folder), { recursive: true });
}
writeFileSync(path.join(dist, '.built'), `${new Date().toISOString()}\n`);

// The client SDK (packages/client) compiles to packages/client/dist, JavaScript and declarations, as it is
// published: examples/ and the demo import it as `@parley/client`, through the workspace's link.
const client = path.join(root, 'packages', 'client');
rmSync(path.join(client, 'dist'), { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', path.join(client, 'tsconfig.build.json')], { stdio: 'inherit' });

// The web demo (packages/demo), built by Vite into packages/demo/dist, which the server serves at /demo/
// (docs/DEMO.md). It imports the client SDK just built.
const { build: viteBuild } = await import('vite');
await viteBuild({ configFile: path.join(root, 'packages', 'demo', 'vite.config.ts') });
