// Offline support. On install, the worker reads the page's index.html, caches every same-origin file it
// references (the wasm, its JS glue, CSS) and every style pack listed in models/index.json, under a
// cache named after the index.html content: a new build gets a new cache and the old one is deleted
// on activation. Requests go to the network first and fall back to the cache when offline.

function hash(text) {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}

async function shellFiles(html) {
  const files = new Set(['./', './manifest.webmanifest', './icon.svg', './models/index.json']);
  for (const m of html.matchAll(/["']([^"'\s]+\.(?:js|wasm|css|svg|webmanifest))["']/g)) {
    const url = new URL(m[1], self.registration.scope);
    if (url.origin === self.location.origin) files.add(url.href);
  }
  try {
    const index = await (await fetch('./models/index.json', { cache: 'no-store' })).json();
    for (const style of index.styles || []) {
      const base = `./models/${style.id}/`;
      const manifest = await (await fetch(base + 'style.json', { cache: 'no-store' })).json();
      files.add(base + 'style.json');
      files.add(base + manifest.weights.file);
      if (manifest.preview) files.add(base + manifest.preview);
    }
  } catch (err) {
    // No styles yet: the shell alone is still worth caching.
  }
  return [...files];
}

let current = null;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const html = await (await fetch('./', { cache: 'no-store' })).text();
    current = 'portraitist-' + hash(html);
    const cache = await caches.open(current);
    await cache.addAll(await shellFiles(html));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    if (current) {
      for (const key of await caches.keys()) if (key !== current) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  event.respondWith((async () => {
    try {
      return await fetch(event.request);
    } catch (err) {
      const cached = await caches.match(event.request, { ignoreSearch: true });
      if (cached) return cached;
      throw err;
    }
  })());
});
