// ONNX Runtime Web (wasm backend) in headless Chromium: ms per 512×512 photo, to set beside our
// page's CPU path (bench/web.mjs). Prints one JSON object on stdout.
//
//   MODEL=/tmp/tiny.onnx node bench/ort.mjs
//   (the model: bench/reference/bench.py onnx --weights W --out /tmp/tiny.onnx --side 512)
//
// Env: MODEL (required), RUNS (timed runs after a warm-up, default 3), PHOTO (default the 512×512
// astronaut), SITE and DUEL (below), THREADS2=0 to skip the 2-thread run, CHROMIUM (default /usr/bin/chromium),
// DUMP=dir to write the page's decoded photo (input.rgba, 512×512×4 bytes) and the first output
// (output.f32, float32 [1,3,512,512] little-endian) there, to check ORT against PyTorch.
//
// The page (bench/ort/) loads ort.wasm.min.mjs and ORT's one wasm build (ort-wasm-simd-threaded:
// SIMD, threads when allowed) from node_modules/onnxruntime-web/dist, served from 127.0.0.1 — no
// other network. Input is what our network takes: the decoded photo as float32 NCHW [1,3,512,512]
// in [-1,1] (x/127.5 − 1); the output goes back to RGBA bytes. Timed like our page: pixels →
// tensor → run → pixels ("total"; JPEG decoding not included), and session.run alone ("run").
//
// Main figure: one thread, on a page that is NOT cross-origin isolated — as our page is, so its
// wasm runs single-threaded too (no SharedArrayBuffer). Then, for reference, numThreads = 2 on a
// second server that adds COOP/COEP headers (cross-origin isolated), reported under "threads2".
//
// With SITE=dir (our built site), also "duel": our page's CPU path (STYLE, else its default style, 512 px) and
// ORT's single-thread page open in the same browser, one photo each in turn, DUEL pairs (default
// 9). This machine's speed drifts by up to 1.5× over seconds, so figures taken minutes apart do not
// compare; turns taken in alternation do. Reported: each side's runs and medians, and the median
// and range of the ratio within each pair.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { Site, afterRun } from '../tests/browser/site.mjs';

if (!process.env.MODEL) {
  console.error('usage: MODEL=path/to/generator.onnx node bench/ort.mjs');
  process.exit(2);
}
const MODEL = path.resolve(process.env.MODEL);
const PHOTO = path.resolve(process.env.PHOTO || 'tests/fixtures/astronaut-512.jpg');
const RUNS = Number(process.env.RUNS || 3);
const DIST = path.resolve('node_modules/onnxruntime-web/dist');
const PAGE = path.resolve('bench/ort');
const TIMEOUT = 1_800_000;

// A temp folder of links: the page, ORT's files, the model and the photo. Site serves .mjs as
// application/octet-stream, which Chromium refuses for module scripts, so ORT's .mjs files are
// linked as .js (the page points ort.env.wasm.wasmPaths at them).
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ort-bench-'));
const links = {
  'index.html': path.join(PAGE, 'index.html'),
  'bench.js': path.join(PAGE, 'bench.js'),
  'ort.wasm.min.js': path.join(DIST, 'ort.wasm.min.mjs'),
  'ort-wasm-simd-threaded.js': path.join(DIST, 'ort-wasm-simd-threaded.mjs'),
  'ort-wasm-simd-threaded.wasm': path.join(DIST, 'ort-wasm-simd-threaded.wasm'),
  'model.onnx': MODEL,
  'photo.jpg': PHOTO,
};
for (const [name, target] of Object.entries(links)) {
  if (!fs.existsSync(target)) throw new Error(`missing ${target}`);
  fs.symlinkSync(target, path.join(root, name));
}

const plain = new Site(root);
const isolated = new Site(root);
const plainBase = await plain.start();
const isolatedBase = await isolated.start();
// Cross-origin isolation without touching Site: headers set before its writeHead are kept.
isolated.server.prependListener('request', (_req, res) => {
  res.setHeader('cross-origin-opener-policy', 'same-origin');
  res.setHeader('cross-origin-embedder-policy', 'require-corp');
});

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});

async function measure(base, threads, dump = false) {
  const context = await browser.newContext({ serviceWorkers: 'block' });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => { if (m.type() !== 'log') console.error(`[page ${m.type()}] ${m.text()}`); });
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  await page.goto(base);
  await page.waitForFunction(() => document.title === 'ready');
  const result = await page.evaluate((o) => window.runBench(o),
    { threads, runs: RUNS, model: 'model.onnx', photo: 'photo.jpg', dump });
  await context.close();
  return result;
}

/** Our page and ORT's, taking turns; see the header. */
async function duel(site, pairs) {
  const ours = new Site(site);
  const oursBase = await ours.start();
  const context = await browser.newContext({ serviceWorkers: 'block' });
  try {
    const style = process.env.STYLE || JSON.parse(fs.readFileSync(path.join(site, 'models/index.json'))).default;
    const title = JSON.parse(fs.readFileSync(path.join(site, 'models', style, 'style.json'))).title;
    const page = await context.newPage();
    page.setDefaultTimeout(TIMEOUT);
    page.on('pageerror', (e) => console.error(`[our page error] ${e.message}`));
    await page.goto(`${oursBase}?backend=cpu`);
    await page.locator('.style', { hasText: title }).click();
    await page.locator('#size').selectOption('512');
    const oursOnce = async () => {
      const state = await afterRun(page, () => page.locator('#photo').setInputFiles(PHOTO), TIMEOUT);
      const ms = state.info?.match(/^CPU · (\d+) ms/);
      if (state.error || !ms) throw new Error(`our page: ${state.error ?? state.info}`);
      return Number(ms[1]);
    };
    const ortPage = await context.newPage();
    ortPage.setDefaultTimeout(TIMEOUT);
    await ortPage.goto(plainBase);
    await ortPage.waitForFunction(() => document.title === 'ready');
    await ortPage.evaluate((o) => window.openBench(o), { threads: 1, model: 'model.onnx', photo: 'photo.jpg' });
    const ortOnce = () => ortPage.evaluate(() => window.runOnce());
    await oursOnce(); // warm-up (ORT's was in openBench)
    const runs = [];
    for (let i = 0; i < pairs; i++) {
      // Who goes first alternates too.
      let oursMs;
      let ortMs;
      if (i % 2 === 0) {
        oursMs = await oursOnce();
        ortMs = await ortOnce();
      } else {
        ortMs = await ortOnce();
        oursMs = await oursOnce();
      }
      runs.push({ ours_ms: oursMs, ort_ms: ortMs, ratio: oursMs / ortMs });
    }
    const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
    const ratios = runs.map((r) => r.ratio);
    return {
      style, pairs,
      ours_ms_median: median(runs.map((r) => r.ours_ms)),
      ort_ms_median: median(runs.map((r) => r.ort_ms)),
      ratio_median: median(ratios), ratio_min: Math.min(...ratios), ratio_max: Math.max(...ratios),
      runs,
    };
  } finally {
    await context.close();
    await ours.stop();
  }
}

// Milliseconds to 0.1; ratios (below 10) to 0.001.
const round = (x) => (typeof x !== 'number' ? x : Math.abs(x) < 10 ? Math.round(x * 1000) / 1000 : Math.round(x * 10) / 10);
const tidy = (r) => JSON.parse(JSON.stringify(r, (_k, v) => round(v)));

let out;
try {
  const single = await measure(plainBase, 1, Boolean(process.env.DUMP));
  if (single.dump) {
    fs.mkdirSync(process.env.DUMP, { recursive: true });
    fs.writeFileSync(path.join(process.env.DUMP, 'input.rgba'), Buffer.from(single.dump.input_rgba, 'base64'));
    fs.writeFileSync(path.join(process.env.DUMP, 'output.f32'), Buffer.from(single.dump.output_f32, 'base64'));
    delete single.dump;
  }
  out = tidy(single);
  if (process.env.SITE) {
    out.duel = tidy(await duel(path.resolve(process.env.SITE), Number(process.env.DUEL || 9)));
  }
  if (process.env.THREADS2 !== '0') {
    const { ort_version, ...rest } = tidy(await measure(isolatedBase, 2));
    out.threads2 = rest;
  }
  out.chromium = browser.version();
  out.model = MODEL;
  out.dist_files = Object.values(links).filter((p) => p.startsWith(DIST)).map((p) => path.basename(p));
} finally {
  await browser.close();
  await plain.stop();
  await isolated.stop();
  fs.rmSync(root, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
