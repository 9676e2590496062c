// The page's WebGPU inference under Node, with Dawn (Chrome's WebGPU implementation, npm `webgpu`)
// as navigator.gpu: the same wasm code path as the page (src/web/harness.rs drives the page's
// device choice, pack parsing and tiled render), on whatever Vulkan driver the machine has — an
// NVIDIA GPU on a lent machine, SwiftShader or lavapipe here. Checks the result against the
// native CLI's output and times square portraits.
//
//   node bench/dawn/run.mjs PKG PACK STYLE PHOTO CLI_PNG OUT_JSON [SIZES] [RUNS]
//
// PKG: the harness built by bench/dawn/build (wasm-bindgen --target nodejs); PACK: a pack folder;
// STYLE: as for `portraitist stylize --style` with the pack's id (e.g. painters:ink); CLI_PNG:
// `portraitist stylize` of PHOTO with that style. SIZES (default 512,1024,2048) are sides the
// photo is resized to for timing; RUNS (default 5) timed runs per size after one warm-up.
// Exits 1 when the output differs from the CLI's by more than one 8-bit level.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { adapterInfo as describeAdapter, loadHarness } from './gpu.mjs';

const [pkg, packDir, style, photoPath, cliPng, outJson, sizesArg = '512,1024,2048', runsArg = '5'] =
  process.argv.slice(2);
if (!outJson) {
  console.error('usage: node bench/dawn/run.mjs PKG PACK STYLE PHOTO CLI_PNG OUT_JSON [SIZES] [RUNS]');
  process.exit(2);
}

const adapterInfo = await describeAdapter();
const { Harness, maxDifference } = loadHarness(pkg);

const manifest = readFileSync(join(packDir, 'style.json'));
const weightsFile = JSON.parse(manifest).weights?.file;
const weights = weightsFile ? readFileSync(join(packDir, weightsFile)) : new Uint8Array();
const photo = readFileSync(photoPath);

const harness = await Harness.open('webgpu', style, manifest, weights);
console.error(`backend: ${harness.backend()}`);

// Correctness first: the photo as it is, against the CLI.
const started = performance.now();
const ours = await harness.stylize(photo);
const firstMs = performance.now() - started;
const difference = maxDifference(ours, readFileSync(cliPng));
writeFileSync(outJson.replace(/\.json$/, '') + '.png', ours);
console.error(`vs the CLI: max difference ${difference} (first run, shaders compiled: ${firstMs.toFixed(0)} ms)`);

const sizes = sizesArg.split(',').map(Number);
const runs = Number(runsArg);
const timings = [];
for (const side of sizes) {
  const ms = Array.from(await harness.time(photo, side, runs)).sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)];
  timings.push({ side, runs, median_ms: median, min_ms: ms[0] });
  console.error(`${side}²: median ${median.toFixed(1)} ms over ${runs} runs (min ${ms[0].toFixed(1)})`);
}

writeFileSync(outJson, JSON.stringify({
  adapter: adapterInfo, backend: harness.backend(), style, photo: photoPath,
  max_difference_vs_cli: difference, first_run_ms: firstMs, timings,
  note: 'Harness.time: the tiled render at the page tile, read-back included, after one warm-up render per size',
}, null, 2) + '\n');
process.exit(difference <= 1 ? 0 : 1);
