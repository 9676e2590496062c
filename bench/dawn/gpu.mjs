// Dawn (Chrome's WebGPU implementation, npm `webgpu`) as the page's navigator.gpu under Node, for
// the wasm harness (src/web/harness.rs): run.mjs and learn.mjs import it first.
import { webcrypto } from 'node:crypto';
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { create, globals } from 'webgpu';

// getrandom's browser path needs crypto.getRandomValues (global from Node 19 on).
globalThis.crypto ??= webcrypto;
// What wgpu's WebGPU backend looks for: a global `Window` (it tells a page from a worker) and
// `navigator.gpu`; the WebGPU constants (GPUBufferUsage…) come with Dawn.
Object.assign(globalThis, globals);
globalThis.Window ??= class Window {};
const gpu = create([]);
Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });

/** The adapter wgpu will get (exits when there is none), described for the results. */
export async function adapterInfo() {
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    console.error('Dawn found no WebGPU adapter (is a Vulkan driver installed? VK_ICD_FILENAMES?)');
    process.exit(1);
  }
  const info = adapter.info;
  const described = {
    vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description,
  };
  console.error(`adapter: ${JSON.stringify(described)}`);
  return described;
}

/** The harness built by bench/dawn/build (wasm-bindgen --target nodejs). */
export function loadHarness(pkg) {
  return createRequire(import.meta.url)(resolve(pkg, 'portraitist.js'));
}
