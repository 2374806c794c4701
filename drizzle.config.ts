import { defineConfig } from 'drizzle-kit';

// drizzle-kit only generates SQL from src/db/schema; the server applies it at start (src/db/migrate.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema',
  out: './src/db/migrations',
});
