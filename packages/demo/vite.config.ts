import { defineConfig } from 'vite';

// The demo is served by the Parley server under /demo/ (src/modules/demo/demo.routes.ts), from dist/.
export default defineConfig({
  root: import.meta.dirname,
  base: '/demo/',
  logLevel: 'warn',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022', sourcemap: true },
});
