// Kheo service worker: keeps the app shell so the app opens with no network.
// `__KHEO_BUILD__` is replaced by the build with a hash of the built files,
// so each build gets its own cache and the old one is dropped on activate.
const BUILD = '__KHEO_BUILD__';
const CACHE = 'kheo-shell-' + BUILD;
const SHELL = ['/index.html', '/kheo_app.js', '/kheo_app_bg.wasm', '/style.css', '/manifest.webmanifest', '/icon.svg', '/icon-192.png', '/icon-512.png'];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(SHELL.map((url) => new Request(url, { cache: 'reload' }))))
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
