// In the page: ONNX Runtime Web (wasm backend) on one 512×512 photo, timed the way our page times
// its CPU path (decoded pixels → tensor → network → pixels; decoding the JPEG is not timed).

const now = () => performance.now();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** RGBA bytes → float32 [1, 3, h, w] (NCHW) in [-1, 1], as our network takes them: x / 127.5 − 1. */
function toTensor(ort, image) {
  const { data, width, height } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0, p = 0; p < plane; p++, i += 4) {
    out[p] = data[i] / 127.5 - 1;
    out[plane + p] = data[i + 1] / 127.5 - 1;
    out[2 * plane + p] = data[i + 2] / 127.5 - 1;
  }
  return new ort.Tensor('float32', out, [1, 3, height, width]);
}

/** float32 [1, 3, h, w] in [-1, 1] → RGBA bytes (alpha 255). */
function toPixels(tensor) {
  const [, , height, width] = tensor.dims;
  const src = tensor.data;
  const plane = width * height;
  const out = new Uint8ClampedArray(4 * plane); // clamps and rounds
  for (let i = 0, p = 0; p < plane; p++, i += 4) {
    out[i] = (src[p] + 1) * 127.5;
    out[i + 1] = (src[plane + p] + 1) * 127.5;
    out[i + 2] = (src[2 * plane + p] + 1) * 127.5;
    out[i + 3] = 255;
  }
  return out;
}

const base64 = (array) => {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
};

/**
 * Loads the photo and the model into a session; returns `once()`, one timed run (see below), and
 * the session's creation times.
 */
async function prepare(ort, { threads, model, photo }) {
  // numThreads > 1 needs SharedArrayBuffer, i.e. a cross-origin-isolated page (COOP + COEP headers);
  // without it ORT falls back to one thread. Our own page is not isolated and runs wasm on one thread.
  ort.env.wasm.numThreads = threads;
  ort.env.wasm.simd = true; // the default; the only build shipped is SIMD
  ort.env.wasm.proxy = false; // run on this thread, as our page does
  ort.env.wasm.wasmPaths = { mjs: new URL('ort-wasm-simd-threaded.js', location.href).href,
    wasm: new URL('ort-wasm-simd-threaded.wasm', location.href).href };

  const blob = await (await fetch(photo)).blob();
  const bitmap = await createImageBitmap(blob);
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const image = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const bytes = new Uint8Array(await (await fetch(model)).arrayBuffer());

  const options = { executionProviders: ['wasm'], graphOptimizationLevel: 'all' };
  let t = now();
  let session = await ort.InferenceSession.create(bytes, options); // incl. loading and compiling ORT's wasm
  const session_ms = now() - t;
  await session.release();
  t = now();
  session = await ort.InferenceSession.create(bytes, options); // ORT's wasm already running
  const session_again_ms = now() - t;
  const [input] = session.inputNames;
  const [output] = session.outputNames;

  const once = async () => {
    const t0 = now();
    const feeds = { [input]: toTensor(ort, image) };
    const t1 = now();
    const result = await session.run(feeds);
    const t2 = now();
    const pixels = toPixels(result[output]);
    const t3 = now();
    if (pixels.length !== image.data.length) throw new Error(`output dims ${result[output].dims}`);
    return { run_ms: t2 - t1, total_ms: t3 - t0, dims: result[output].dims, data: result[output].data };
  };
  return { once, image, input, output, session, session_ms, session_again_ms };
}

/** For bench/ort.mjs's interleaved runs beside our page: a session kept open, one run per call. */
export async function open(ort, options) {
  const { once } = await prepare(ort, options);
  await once(); // warm-up
  return async () => (await once()).total_ms;
}

export async function bench(ort, { threads, runs, model, photo, dump }) {
  const { once, image, input, session, session_ms, session_again_ms } = await prepare(ort, { threads, model, photo });
  const first = await once();
  const timed = [];
  for (let i = 0; i < runs; i++) timed.push(await once());
  await session.release();
  return {
    ort_version: ort.env.versions?.web ?? ort.env.versions?.common,
    threads: ort.env.wasm.numThreads,
    cross_origin_isolated: self.crossOriginIsolated,
    input: `${input} [1,3,${image.height},${image.width}] float32 [-1,1]`,
    output_dims: first.dims,
    session_ms, session_again_ms,
    first_ms: first.total_ms, first_run_ms: first.run_ms,
    run_ms_median: median(timed.map((r) => r.run_ms)),
    total_ms_median: median(timed.map((r) => r.total_ms)),
    runs: timed.map(({ run_ms, total_ms }) => ({ run_ms, total_ms })),
    // With DUMP: the decoded photo (RGBA bytes) and the first output (float32 NCHW), to compare
    // with PyTorch on exactly the same input.
    ...(dump ? { dump: { input_rgba: base64(image.data), output_f32: base64(first.data) } } : {}),
  };
}
