// Web app size and speed, printed as a table (a benchmark: it never fails on timing).
//
//   scripts/bench-web            (builds the optimised site, then runs this)
//   SITE=dist node bench/web.mjs [STYLE_ID]
//   JSON=out.json ...            also writes the figures as JSON (bench/run uses it)
//   BACKENDS=cpu ...             only these of `cpu,webgpu` (the default: both)
//
// Figures: wasm size raw and gzipped, the style pack's size, time from navigation to the first
// result (photo given as soon as the page is ready), and ms per 512×512 photo on the CPU path and
// on WebGPU (SwiftShader, software, on machines without a GPU). The page reports its own run time
// ("WebGPU · N ms"); the first run of each page is the warm-up and is reported separately. Where the
// site has a noise pack: ms for Create's grid of 16 portraits on each backend (the page's own figure,
// "16 portraits in N ms"; the first grid includes loading the pack, the next ones are timed).

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { chromium } from 'playwright-core';
import { Site, afterRun } from '../tests/browser/site.mjs';

const SITE = path.resolve(process.env.SITE || 'dist');
const STYLE = process.argv[2] || JSON.parse(fs.readFileSync(path.join(SITE, 'models/index.json'))).default;
const RUNS = Number(process.env.RUNS || 3);
const PHOTO = path.resolve('tests/fixtures/astronaut-512.jpg');

const server = new Site(SITE);
const base = await server.start();

const mb = (bytes) => `${(bytes / 1e6).toFixed(2)} MB`;
const wasm = fs.readFileSync(path.join(SITE, 'portraitist-web_bg.wasm'));
const glue = fs.readFileSync(path.join(SITE, 'portraitist-web.js'));
const packDir = path.join(SITE, 'models', STYLE);
const packBytes = fs.readdirSync(packDir).reduce((n, f) => n + fs.statSync(path.join(packDir, f)).size, 0);
const manifest = JSON.parse(fs.readFileSync(path.join(packDir, 'style.json')));
const weights = fs.statSync(path.join(packDir, manifest.weights.file)).size;

// Numbers for bench/run's report, beside the printed table.
const figures = {
  style: STYLE, wasm_bytes: wasm.length, wasm_gzip_bytes: zlib.gzipSync(wasm, { level: 9 }).length,
  glue_gzip_bytes: zlib.gzipSync(glue, { level: 9 }).length, pack_bytes: packBytes, weights_bytes: weights,
  weights_dtype: manifest.weights.dtype,
};
const rows = [
  ['wasm, raw', mb(wasm.length)],
  ['wasm, gzip -9', mb(zlib.gzipSync(wasm, { level: 9 }).length)],
  ['JS glue, gzip -9', mb(zlib.gzipSync(glue, { level: 9 }).length)],
  [`style pack "${STYLE}" (all files)`, mb(packBytes)],
  [`style pack "${STYLE}" weights (${manifest.weights.dtype})`, mb(weights)],
];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const version = browser.version();

/** Do `action` and return the page's state after the run it starts; a page error stops the bench. */
async function run(page, action) {
  const state = await afterRun(page, action, 600_000);
  if (state.error) throw new Error(state.error);
  return state;
}

for (const backend of (process.env.BACKENDS || 'cpu,webgpu').split(',')) {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  const started = Date.now();
  await page.goto(`${base}?backend=${backend}`);
  await page.locator('.style', { hasText: manifest.title }).click();
  await page.locator('#size').selectOption('512');
  let last = await run(page, () => page.locator('#photo').setInputFiles(PHOTO));
  const firstMs = Date.now() - started;
  rows.push([`${backend}: navigation to first result (512 px, incl. wasm start, style load, warm-up)`,
    `${firstMs} ms`]);
  if (!last.info.toLowerCase().startsWith(backend === 'cpu' ? 'cpu' : 'webgpu')) {
    rows.push([`${backend}: not available here`, last.info]);
    figures[backend] = { available: false, info: last.info };
    await context.close();
    continue;
  }
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    last = await run(page, () => page.locator('#photo').setInputFiles(PHOTO));
    times.push(Number(last.info.match(/(\d+) ms/)[1]));
  }
  times.sort((a, b) => a - b);
  rows.push([`${backend}: ms per 512×512 photo (median of ${RUNS})`, `${times[Math.floor(RUNS / 2)]} ms`]);
  figures[backend] = { available: true, first_result_ms: firstMs, ms_median: times[Math.floor(RUNS / 2)], runs: times };
  if (await page.locator('#create').isVisible()) {
    const grids = [];
    for (let i = 0; i <= RUNS; i++) {
      await page.locator('#create').click();
      await page.waitForFunction((n) => Number(document.querySelector('#create-grid')?.dataset.grids ?? 0) > n
        || document.querySelector('.error') !== null, i, { timeout: 600_000 });
      const status = await page.locator('.create-actions .status').textContent();
      const ms = status.match(/in (\d+) ms/);
      if (!ms) throw new Error(`Create: ${status}`);
      if (i > 0) grids.push(Number(ms[1]));
    }
    grids.sort((a, b) => a - b);
    rows.push([`${backend}: ms per Create grid of 16 portraits (median of ${RUNS})`, `${grids[Math.floor(RUNS / 2)]} ms`]);
    figures[backend].create_grid_ms_median = grids[Math.floor(RUNS / 2)];
  }
  await context.close();
}
await browser.close();
await server.stop();

const width = Math.max(...rows.map((r) => r[0].length));
console.log(`\nPortraitist web app, site ${SITE}, Chromium ${version}`);
for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`);
if (process.env.JSON) {
  fs.writeFileSync(process.env.JSON, JSON.stringify({ chromium: version, ...figures }, null, 1));
}
