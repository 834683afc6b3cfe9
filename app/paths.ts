import { existsSync } from 'node:fs';
import path from 'node:path';

/** The package root (where package.json lives), from source (app/) or compiled (dist/app/) code alike. */
export function packageRoot(): string {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`package.json not found above ${__dirname}`);
    dir = parent;
  }
  return dir;
}

export const MIGRATIONS_DIR = path.join(packageRoot(), 'prisma', 'migrations');
