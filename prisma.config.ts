// Prisma CLI configuration. The app itself never reads this: it connects through app/db with
// the URL from app/config.ts. The CLI needs a URL only for commands that talk to a database.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
  datasource: { url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/easeemail' },
});
