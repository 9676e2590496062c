// Shared by the browser tests and bench/web.mjs: a static server on 127.0.0.1 for the built site
// (it records every request and can be stopped, for the offline test, and started again on its
// port), and waiting for the page's runs.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.svg': 'image/svg+xml',
  '.webmanifest': 'application/manifest+json', '.png': 'image/png', '.jpg': 'image/jpeg',
  '.bpk': 'application/octet-stream',
};

export class Site {
  constructor(root) {
    this.root = path.resolve(root);
    this.requests = [];
    this.server = null;
    this.port = 0;
  }

  async start(port = 0) {
    this.server = http.createServer((req, res) => {
      this.requests.push(req.url);
      const url = new URL(req.url, 'http://127.0.0.1');
      let file = path.join(this.root, decodeURIComponent(url.pathname));
      if (!file.startsWith(this.root)) { res.writeHead(403).end(); return; }
      if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
      fs.readFile(file, (err, body) => {
        if (err) { res.writeHead(404).end('not found'); return; }
        res.writeHead(200, {
          'content-type': TYPES[path.extname(file)] || 'application/octet-stream',
          'cache-control': 'no-cache',
        });
        res.end(body);
      });
    });
    await new Promise((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = this.server.address().port;
    return `http://127.0.0.1:${this.port}/`;
  }

  async stop() {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    this.server = null;
  }
}

/** The page's count of finished runs (#backend data-results), its backend label and its error. */
export function pageState(page) {
  return page.evaluate(() => {
    const backend = document.querySelector('#backend');
    return {
      results: Number(backend?.dataset.results ?? 0),
      info: backend?.textContent ?? '',
      error: document.querySelector('.error')?.textContent ?? null,
    };
  });
}

/** Do `action` (give a photo, change the size) and wait until the run it starts has finished or a
 * new error shows; returns the page's state then. */
export async function afterRun(page, action, timeout) {
  const before = await pageState(page);
  await action();
  await page.waitForFunction((prev) => {
    const error = document.querySelector('.error')?.textContent ?? null;
    const results = Number(document.querySelector('#backend')?.dataset.results ?? 0);
    return (error !== null && error !== prev.error) || results > prev.results;
  }, before, { timeout });
  return pageState(page);
}
