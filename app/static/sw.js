// Kheo service worker: keeps the app shell so the app opens with no network.
// `__KHEO_BUILD__` is replaced by the build with a hash of the built files,
// so each build gets its own cache and the old one is dropped on activate.
const BUILD = '__KHEO_BUILD__';
const CACHE = 'kheo-shell-' + BUILD;
const SHELL = ['/index.html', '/kheo_login.js', '/kheo_login_bg.wasm', '/kheo_app.js', '/kheo_app_bg.wasm', '/style.css', '/manifest.webmanifest', '/icon.svg', '/icon-192.png', '/icon-512.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      // 'no-cache': revalidated against the server (ETag, 304 when unchanged),
      // so the copy is this build's, yet bytes the page already downloaded
      // are not downloaded again.
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'no-cache' }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith('kheo-shell-') && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Cache first: on a weak signal the network is slow, and the shell only
// changes with a new build (which installs a new worker). The API is never
// cached: the app keeps its data in its own storage.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin || url.pathname.startsWith('/api/')) {
    return;
  }
  const key = event.request.mode === 'navigate' ? '/index.html' : url.pathname;
  event.respondWith(
    caches.open(CACHE)
      .then((cache) => cache.match(key))
      .then((hit) => hit || fetch(event.request)),
  );
});

// Diagnostics: what this worker downloaded itself (Resource Timing), so a
// page can tell how much its offline copy cost on the phone's link; a
// revalidated file costs its headers only.
self.addEventListener('message', (event) => {
  if (event.data !== 'kheo-downloads' || !event.ports[0]) return;
  const entries = self.performance.getEntriesByType('resource')
    .map((e) => ({ name: new URL(e.name).pathname, transferSize: e.transferSize, encodedBodySize: e.encodedBodySize }));
  event.ports[0].postMessage(entries);
});
