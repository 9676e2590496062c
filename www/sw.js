// Offline support. On install the worker caches the app shell (page, loader, wasm, CSS, icons) and
// every style pack listed in models/index.json. Requests go to the network first; each good
// same-origin answer refreshes the cache, so the cache always holds the last version seen online,
// and with the network off everything comes from it. A new sw.js gets a new cache and the old one
// is deleted on activation.

const CACHE = 'portraitist-v3';
const SHELL = [
  './', './boot.js', './portraitist-web.js', './portraitist-web_bg.wasm', './style.css',
  './manifest.webmanifest', './icon.svg', './models/index.json',
];

async function styleFiles() {
  const files = [];
  try {
    const index = await (await fetch('./models/index.json', { cache: 'no-store' })).json();
    for (const style of index.styles || []) {
      const base = `./models/${style.id}/`;
      const manifest = await (await fetch(base + 'style.json', { cache: 'no-store' })).json();
      files.push(base + 'style.json');
      // A look has no weights file: its formula is in the app.
      if (manifest.weights && manifest.weights.file) files.push(base + manifest.weights.file);
      if (style.preview) files.push(base + style.preview);
      // A multi-style pack: each style's own preview.
      for (const one of style.styles || []) if (one.preview) files.push(base + one.preview);
    }
  } catch (err) {
    // No styles yet: the shell alone is still worth caching.
  }
  return [...new Set(files)]; // cache.addAll refuses duplicates
}

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const files = [...SHELL, ...(await styleFiles())];
    await cache.addAll(files.map((f) => new Request(f, { cache: 'no-cache' })));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    // The page is cached under its bare address: `?backend=cpu` and the like are for the app.
    const key = event.request.mode === 'navigate' ? new URL('./', self.registration.scope).href : event.request;
    try {
      const response = await fetch(event.request);
      if (response.ok && response.type === 'basic') {
        const copy = response.clone();
        event.waitUntil(caches.open(CACHE).then((cache) => cache.put(key, copy)));
      }
      return response;
    } catch (err) {
      const cached = await caches.match(key, { ignoreSearch: true });
      if (cached) return cached;
      throw err;
    }
  })());
});
