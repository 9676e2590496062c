// The page's "Learn a style" under Node on Dawn (gpu.mjs): the worker's Lesson on WebGPU through
// the wasm harness (src/web/harness.rs, LearnHarness), its loss curve checked step for step
// against `portraitist learn --log` on the CPU from the same seed, and its steps timed.
//
//   node bench/dawn/learn.mjs PKG PACK STYLE_IMAGE CONTENT_PHOTO CLI_CSV OUT_JSON STEPS SIZE BATCH
//
// PKG: the harness built by bench/dawn/build; PACK: the base pack's folder (e.g. models/painters);
// CLI_CSV: `portraitist --backend cpu learn --pack PACK --images STYLE_IMAGE --content (a folder
// holding only CONTENT_PHOTO) --steps STEPS --size SIZE --batch BATCH --seed 1 --log CLI_CSV`.
// Exits 1 when a loss differs from the CLI's by more than TOLERANCE (relative; default 1e-3, the
// browser tests' bound).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapterInfo as describeAdapter, loadHarness } from './gpu.mjs';

const [pkg, packDir, styleImage, contentPhoto, cliCsv, outJson, stepsArg, sizeArg, batchArg] =
  process.argv.slice(2);
if (!batchArg) {
  console.error('usage: node bench/dawn/learn.mjs PKG PACK STYLE_IMAGE CONTENT_PHOTO CLI_CSV OUT_JSON STEPS SIZE BATCH');
  process.exit(2);
}
const [steps, size, batch] = [stepsArg, sizeArg, batchArg].map(Number);
const tolerance = Number(process.env.TOLERANCE || 1e-3);

const adapter = await describeAdapter();
const { LearnHarness } = loadHarness(pkg);
const manifest = readFileSync(join(packDir, 'style.json'));
const weightsFile = JSON.parse(manifest).weights?.file;
const weights = weightsFile ? readFileSync(join(packDir, weightsFile)) : new Uint8Array();
const vgg19 = readFileSync(process.env.VGG19 || 'data/vgg19/vgg19.bin');

const opened = performance.now();
const lesson = await LearnHarness.open('webgpu', manifest, weights, vgg19, readFileSync(styleImage),
  readFileSync(contentPhoto), size, batch, 1);
const openMs = performance.now() - opened;
console.error(`backend: ${lesson.backend()}; the lesson opened in ${openMs.toFixed(0)} ms`);

const native = readFileSync(cliCsv, 'utf8').trim().split('\n').slice(1).map((l) => l.split(',').map(Number));
if (native.length !== steps) {
  console.error(`${cliCsv} has ${native.length} steps, not ${steps}`);
  process.exit(1);
}
const curve = [];
let worst = 0;
for (let i = 0; i < steps; i++) {
  const [content, style, tv, ms] = Array.from(await lesson.step());
  curve.push({ step: i + 1, content, style, tv, ms });
  for (const [k, ours] of [content, style, tv].entries()) {
    worst = Math.max(worst, Math.abs(ours - native[i][k + 1]) / Math.abs(native[i][k + 1]));
  }
  console.error(`step ${i + 1}: content ${content.toFixed(4)} style ${style.toFixed(4)} tv ${tv.toFixed(4)} in ${ms.toFixed(0)} ms`);
}
// The first step compiles the shaders; the pace is that of the others.
const later = curve.slice(1).map((c) => c.ms).sort((a, b) => a - b);
const median = later.length ? later[Math.floor(later.length / 2)] : curve[0].ms;
console.error(`vs the CLI: worst relative difference ${worst.toExponential(2)}; ` +
  `${(1000 / median).toFixed(2)} steps/s (median ${median.toFixed(0)} ms after the first, ${curve[0].ms.toFixed(0)} ms)`);
writeFileSync(outJson, JSON.stringify({
  adapter, backend: lesson.backend(), steps, size, batch, open_ms: openMs,
  first_step_ms: curve[0].ms, median_step_ms: median, steps_per_s: 1000 / median,
  worst_relative_difference_vs_cli: worst, tolerance, curve,
  note: 'LearnHarness.step: one Lesson step (random crops, forward, VGG19 losses, backward, Adam) with its losses read back',
}, null, 2) + '\n');
process.exit(worst <= tolerance ? 0 : 1);
