// A newcomer's first use of a served page, for scripts/check-fresh: open it, keep the default
// style, give a portrait, wait for the result and download it.
// Usage: node scripts/check-page.mjs URL PHOTO OUT_DIR   (prints one JSON line; exit 1 on failure)
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { afterRun, pageState } from '../tests/browser/site.mjs';

const [url, photo, out] = process.argv.slice(2);
if (!url || !photo || !out) {
  console.error('usage: node scripts/check-page.mjs URL PHOTO OUT_DIR');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-dev-shm-usage', '--enable-unsafe-webgpu', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
});
const logs = [];
let ok = false;
try {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  const started = Date.now();
  await page.goto(url);
  const style = page.locator('.style[aria-pressed="true"]');
  await style.first().waitFor({ timeout: 60_000 });
  const styleTitle = (await style.first().textContent()).trim();
  const state = await afterRun(page, () => page.locator('#photo').setInputFiles(photo), 600_000);
  await page.screenshot({ path: path.join(out, 'page.png'), fullPage: true });
  if (state.error) throw new Error(`the page shows an error: ${state.error}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#download-png').click()]);
  const file = path.join(out, dl.suggestedFilename());
  await dl.saveAs(file);
  const size = fs.statSync(file).size;
  if (size < 1000) throw new Error(`the downloaded result ${file} is only ${size} bytes`);
  console.log(JSON.stringify({ ok: true, style: styleTitle, backend: state.info, result: file, bytes: size,
    seconds: (Date.now() - started) / 1000, screenshot: path.join(out, 'page.png') }));
  ok = true;
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: e.message, log: logs.slice(-20) }));
} finally {
  await browser.close();
}
process.exit(ok ? 0 : 1);
