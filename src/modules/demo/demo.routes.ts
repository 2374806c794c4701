import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import { Type } from 'typebox';
import type { App } from '../../http/app-types.ts';
import { PACKAGE_ROOT } from '../../package-info.ts';
import { DEMO_USERS, type DemoService } from './demo.service.ts';

/** Where `npm run build` (and `npm ci`) puts the demo's pages: packages/demo, built by Vite. */
export const DEMO_ASSETS_DIR = path.join(PACKAGE_ROOT, 'packages', 'demo', 'dist');

const open = { auth: 'none' } as const;

const SignInBody = Type.Object(
  { user_id: Type.Union(DEMO_USERS.map((user) => Type.Literal(user.id))) },
  { additionalProperties: false },
);

/**
 * The web demo at /demo/ (docs/DEMO.md): its pages, and its sign-in. Not part of the API: hidden from the
 * OpenAPI document, and only registered when the demo is on.
 */
export async function registerDemoRoutes(
  app: App,
  demo: DemoService,
  assetsDir = DEMO_ASSETS_DIR,
): Promise<void> {
  app.get('/demo', { config: open, schema: { hide: true } }, (_request, reply) => reply.redirect('/demo/'));

  app.get('/demo/users', { config: open, schema: { hide: true } }, () => ({ users: demo.users }));

  app.post('/demo/session', {
    config: open,
    schema: { hide: true, body: SignInBody },
    handler: async (request, reply) => reply.code(201).send(await demo.signIn(request.body.user_id)),
  });

  if (!existsSync(path.join(assetsDir, 'index.html'))) {
    app.log.warn({ assetsDir }, 'the web demo is on but not built (npm run build); /demo/ answers 404');
    return;
  }
  await app.register(fastifyStatic, {
    root: assetsDir,
    prefix: '/demo/',
    decorateReply: false,
    // Hashed asset names change with each build; the page itself is always checked again.
    setHeaders: (response, file) => {
      response.header(
        'cache-control',
        file.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable',
      );
    },
  });
}
