// Serves a built site (trunk's dist/) on 127.0.0.1 for scripts/serve: static files only, the same
// server the browser tests use. Usage: node scripts/serve.mjs DIST [--port N]
import fs from 'node:fs';
import path from 'node:path';
import { Site } from '../tests/browser/site.mjs';

const args = process.argv.slice(2);
const dist = args[0];
let port = 8080;
for (let i = 1; i < args.length; i++) {
  if (args[i] === '--port' && /^\d+$/.test(args[i + 1] ?? '')) port = Number(args[++i]);
  else { console.error(`unknown argument ${args[i]} (usage: scripts/serve [--port N])`); process.exit(2); }
}
if (!dist || !fs.existsSync(path.join(dist, 'index.html'))) {
  console.error(`error: ${dist}/index.html is missing: the web build did not produce a site`);
  process.exit(1);
}
const site = new Site(dist);
try {
  const url = await site.start(port);
  console.log(`== serving the web app on ${url} (Ctrl-C stops)`);
} catch (e) {
  console.error(`error: cannot listen on 127.0.0.1:${port}: ${e.message} (another server there? try --port)`);
  process.exit(1);
}
