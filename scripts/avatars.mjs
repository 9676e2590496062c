// Cartoon portraits for the noise GAN's training data, called by scripts/fetch-data.py:
//   node scripts/avatars.mjs TOOLS_DIR OUT_DIR FIRST COUNT SIDE
// writes OUT_DIR/avatar-NNNN.png for N in FIRST..FIRST+COUNT, each a SIDE×SIDE face drawn by the npm
// package facesjs (Apache-2.0) and rasterised by @resvg/resvg-js, both installed in TOOLS_DIR.
// Deterministic: face N is drawn with Math.random replaced by a generator seeded with N, so the same
// files come out on every run and machine. Gender alternates; the background is a light tint picked
// from the same seed. Existing files are kept.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [tools, out, firstArg, countArg, sideArg] = process.argv.slice(2);
if (!tools || !out) {
  console.error('usage: node scripts/avatars.mjs TOOLS_DIR OUT_DIR FIRST COUNT SIDE');
  process.exit(2);
}
const first = Number(firstArg ?? 0);
const count = Number(countArg ?? 100);
const side = Number(sideArg ?? 128);
const modules = path.resolve(tools, 'node_modules');
const { generate, faceToSvgString } = await import(pathToFileURL(path.join(modules, 'facesjs/build/index.js')).href);
const require = createRequire(path.join(modules, 'x.js'));
const { Resvg } = require('@resvg/resvg-js');

/** mulberry32: a small seeded generator in [0, 1). */
function seeded(seed) {
  let a = (seed * 2654435761 + 0x9e3779b9) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

fs.mkdirSync(out, { recursive: true });
const random = Math.random;
let made = 0;
for (let n = first; n < first + count; n++) {
  const file = path.join(out, `avatar-${String(n).padStart(4, '0')}.png`);
  if (fs.existsSync(file)) continue;
  Math.random = seeded(n);
  const face = generate(undefined, { gender: n % 2 === 0 ? 'male' : 'female' });
  const hue = Math.floor(Math.random() * 360);
  Math.random = random;
  // facesjs draws on a 400×600 canvas, the head between y ≈ 30 and 500: a 480-unit square from y 40
  // frames head, chin and a little of the shoulders.
  const svg = faceToSvgString(face)
    .replace(/^<svg([^>]*)>/, (_, attrs) => `<svg${attrs.replace(/viewBox="[^"]*"/, '')} viewBox="-40 40 480 480">` +
      `<rect x="-100" y="0" width="600" height="600" fill="hsl(${hue}, 35%, 85%)"/>`);
  const png = new Resvg(svg, { fitTo: { mode: 'width', value: side }, background: 'white' }).render().asPng();
  fs.writeFileSync(file, png);
  made++;
}
console.log(`${made} new avatars in ${out}`);
