// The import rules (docs/ARCHITECTURE.md, "Layers"), checked by `npm run lint` after ESLint. Paths are
// relative to the repository root. Type-only imports count like any other: a cycle or a wrong-way import
// through `import type` ties the files together as much as one through a value.

/** A repository of any module. */
const REPOSITORY = '\\.repository\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'No import cycle between files, type-only imports included: the code reads one way, from the ' +
        'routes down to the database. Break a cycle at its root (move what both sides need below both).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment:
        'Every import resolves to a file or an installed package. An import the checker cannot follow is ' +
        'one it cannot check, so it fails rather than passing unseen.',
      from: {},
      // The bundle bin/start.mjs runs exists only once `npm run build` has made it.
      to: { couldNotResolve: true, pathNot: '(^|/)dist/main\\.mjs$' },
    },
    {
      name: 'db-below-modules',
      severity: 'error',
      comment: 'src/db/ is the bottom layer: it imports no module, no transport and nothing real-time.',
      from: { path: '^src/db/' },
      to: { path: '^src/(modules|http|realtime|jobs)/' },
    },
    {
      name: 'repositories-look-down',
      severity: 'error',
      comment:
        'A repository is queries: it imports the database layer, pure helpers and the types of other ' +
        'repositories and of schemas, never a service, a route, a presenter, a view loader, the access ' +
        'rules that read (visibility), the transport or the real-time side.',
      from: { path: REPOSITORY },
      to: {
        path: [
          '\\.(service|routes|presenter)\\.ts$',
          '-views\\.ts$',
          '^src/modules/access/visibility\\.ts$',
          '^src/(http|realtime|jobs)/',
        ],
      },
    },
    {
      name: 'presenters-are-pure',
      severity: 'error',
      comment:
        'A presenter (*.presenter.ts) shapes rows into views and runs no query: it may import the row ' +
        'types of repositories, never their functions, the database or a service. What a view needs ' +
        'beyond its rows is read by a view loader (*-views.ts) and handed over.',
      from: { path: '\\.presenter\\.ts$' },
      to: {
        path: [
          REPOSITORY,
          '\\.service\\.ts$',
          '-views\\.ts$',
          '^src/db/',
          '^src/modules/access/visibility\\.ts$',
        ],
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'presenters-no-orm',
      severity: 'error',
      comment: 'A presenter runs no query, so it needs nothing of the ORM.',
      from: { path: '\\.presenter\\.ts$' },
      to: { path: 'node_modules/drizzle-orm/' },
    },
    {
      name: 'permissions-are-pure',
      severity: 'error',
      comment:
        'The access rules (who may see, send, manage) are pure functions of roles and rows: they import ' +
        'nothing but the errors they throw, so every layer can ask them.',
      from: { path: '^src/modules/access/permissions\\.ts$' },
      to: { pathNot: '^src/errors\\.ts$' },
    },
    {
      name: 'routes-through-services',
      severity: 'error',
      comment: 'Routes call services; they never query a repository themselves.',
      from: { path: '\\.routes\\.ts$' },
      to: { path: [REPOSITORY, '^src/db/tenant-scope\\.ts$'] },
    },
    {
      name: 'services-below-routes',
      severity: 'error',
      comment:
        'Services (and the use cases and helpers beside them) never import routes: HTTP, the CLI and ' +
        'socket frames all call the same service.',
      from: { path: '^src/modules/', pathNot: '\\.routes\\.ts$' },
      to: { path: '\\.routes\\.ts$' },
    },
    {
      name: 'services-no-fastify',
      severity: 'error',
      comment:
        'Services import no Fastify code: from src/http/ only the framework-free cursor helpers of ' +
        'pagination.ts (schemas, which describe HTTP bodies, may use src/http/schemas.ts).',
      from: { path: '\\.service\\.ts$' },
      to: { path: ['^src/http/(?!pagination\\.ts$)', 'node_modules/fastify/'] },
    },
    {
      name: 'realtime-through-services',
      severity: 'error',
      comment:
        'src/realtime/ reaches the modules through their services (and the events module, whose log it ' +
        "delivers), never through another module's repository.",
      from: { path: '^src/realtime/' },
      to: { path: `^src/modules/(?!events/)[^/]+/[^/]+${REPOSITORY}` },
    },
    {
      name: 'modules-not-to-realtime',
      severity: 'error',
      comment:
        'The modules do not depend on the real-time side, which depends on them: what both need (the bus ' +
        "interface, the cursor) is the events module's.",
      from: { path: '^src/modules/' },
      to: { path: '^src/realtime/' },
    },
    {
      name: 'outbound-requests-through-src-outbound',
      severity: 'error',
      comment:
        'A request to a URL a tenant or a user gave (webhooks, Web Push) goes through src/outbound/, which ' +
        'refuses private addresses at connect time, follows no redirect and bounds time and size ' +
        '(docs/OUTBOUND.md): no other code under src/ uses the HTTP client directly.',
      from: { path: '^src/', pathNot: '^src/outbound/' },
      to: { path: 'node_modules/undici/' },
    },
    {
      name: 'outbound-is-a-leaf',
      severity: 'error',
      comment:
        'src/outbound/ knows nothing of Parley: every layer (services that store a URL, jobs that send) can ' +
        'use it, and it is tested on its own.',
      from: { path: '^src/outbound/' },
      to: { path: '^src/(?!outbound/)' },
    },
    {
      name: 'client-sdk-stands-alone',
      severity: 'error',
      comment:
        'packages/client is published on its own (@parley/client): its source imports only itself and its ' +
        'own dependencies, never the server.',
      from: { path: '^packages/client/src/' },
      // Node built-ins are client-sdk-no-node-built-ins' concern.
      to: {
        pathNot: ['^packages/client/src/', 'node_modules/(openapi-fetch|ws|ts-mls)/'],
        dependencyTypesNot: ['core'],
      },
    },
    {
      name: 'mls-behind-one-adapter',
      severity: 'error',
      comment:
        'ts-mls is pinned (its 2.0 changes the API; docs/E2EE.md): the server and the SDK each reach it through ' +
        'one module, so that moving to another version or library is a change of that module only.',
      from: {
        path: '^(src|packages/client/src)/',
        pathNot: ['^src/mls/key-packages\\.ts$', '^packages/client/src/e2ee/mls\\.ts$'],
      },
      to: { path: 'node_modules/ts-mls/' },
    },
    {
      name: 'client-sdk-browser-safe',
      severity: 'error',
      comment:
        'Everything of the client SDK but its Node entry (node.ts) runs in browsers: no Node built-in, no ws.',
      from: { path: '^packages/client/src/(?!node\\.ts$)' },
      to: { path: 'node_modules/ws/' },
    },
    {
      name: 'client-sdk-file-store-node-only',
      severity: 'error',
      comment: 'The e2ee file store uses node:fs: only the Node entry of e2ee (e2ee/node.ts) may export it.',
      from: { path: '^packages/client/src/', pathNot: '^packages/client/src/e2ee/node\\.ts$' },
      to: { path: '^packages/client/src/e2ee/file-store\\.ts$' },
    },
    {
      name: 'client-sdk-no-node-built-ins',
      severity: 'error',
      comment:
        'The client SDK runs in browsers: no Node built-in anywhere in its source (ws brings its own), but ' +
        'in the e2ee file store, which only the Node entry of e2ee exports.',
      from: { path: '^packages/client/src/', pathNot: '^packages/client/src/e2ee/file-store\\.ts$' },
      to: { dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Counts `import type` too (see the top of this file).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: ['^src/db/migrations/', '^bench/results/', '^dist/', '^packages/[a-z]+/dist/', '^coverage/', '^data/'] },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
