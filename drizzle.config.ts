import { defineConfig } from 'drizzle-kit';

// drizzle-kit only generates SQL from src/db/schema; the server applies it whenever it opens a database
// (openDatabase in src/db/client.ts).
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema',
  out: './src/db/migrations',
});
