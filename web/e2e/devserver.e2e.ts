// Not a test: with E2E_DEVSERVER=<minutes>, starts a seeded server and keeps
// it up so a developer can open the console (`npm run e2e -- devserver`).
// The URL and sign-in are written to build/devserver.json.

import { test } from 'vitest';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startServer } from './server';
import { SHOTS } from './browser';

const minutes = Number(process.env.E2E_DEVSERVER ?? 0);

test.skipIf(!minutes)('seeded dev server', async () => {
  const srv = await startServer({ entities: Number(process.env.E2E_ENTITIES ?? 180) });
  const info = { url: srv.url, username: srv.username, password: srv.password, sourceToken: srv.sourceToken, tokens: srv.seeded?.tokens, session: srv.session };
  mkdirSync(join(SHOTS, '..'), { recursive: true });
  writeFileSync(join(SHOTS, '..', 'devserver.json'), JSON.stringify(info, null, 2));
  console.log(`dev server on ${srv.url} (admin / ${srv.password})`);
  await new Promise((r) => setTimeout(r, minutes * 60_000));
  await srv.stop();
}, 24 * 3600_000);
