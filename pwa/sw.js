// The service worker is versioned and boring (STYLE.md habit 14): the whole app shell is cached
// on install, old caches go on activate, the shell is served cache-first (offline too), and
// /api/ always goes to the network — the data lives in IndexedDB and never depends on this cache.
//
// VERSION changes with every release by itself: the server serves this file with the placeholder
// replaced by a hash of every shell file (server/pwa.py), so any change to the app makes a new
// worker, which installs beside the old one and waits; the app shows "new version — reload", and
// only when the user taps it does it take over.

const VERSION = "__SHELL_VERSION__";
const CACHE = `gridbook-shell-${VERSION}`;

// EVERY file of the app (tests/test_pwa_shell.py checks this list against the directory).
const SHELL = [
  "/index.html",
  "/manifest.webmanifest",
  "/css/app.css",
  "/icons/icon-192.png",
  "/icons/icon-512.png",
  "/icons/maskable-512.png",
  "/icons/apple-touch-icon.png",
  "/js/app.js",
  "/js/api.js",
  "/js/db.js",
  "/js/dom.js",
  "/js/fields.js",
  "/js/format.js",
  "/js/forms.js",
  "/js/i18n.js",
  "/js/icons.js",
  "/js/lookups.js",
  "/js/model.js",
  "/js/photo.js",
  "/js/prefill.js",
  "/js/proxy.js",
  "/js/signature.js",
  "/js/sync.js",
  "/js/tags.js",
  "/js/ui.js",
  "/js/values.js",
  "/js/workflow.js",
  "/js/messages/zh-CN.js",
  "/js/messages/en.js",
  "/js/views/conflicts.js",
  "/js/views/household.js",
  "/js/views/household_edit.js",
  "/js/views/households.js",
  "/js/views/login.js",
  "/js/views/matter.js",
  "/js/views/matter_detail.js",
  "/js/views/matters.js",
  "/js/views/packing.js",
  "/js/views/proxy_home.js",
  "/js/views/proxy_panel.js",
  "/js/views/resident_edit.js",
  "/js/views/sync_panel.js",
  "/js/views/visit.js",
  "/js/views/visit_detail.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // cache: "reload" so that a stale HTTP cache never ends up in a new version's shell
    await cache.addAll(SHELL.map((url) => new Request(url, { cache: "reload" })));
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("gridbook-shell-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "SKIP_WAITING") self.skipWaiting();
});

const APP_PAGES = new Set(["/", "/index.html"]);

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin) return;
  // The API is never cached: not the data, not the errors, not the photos.
  if (url.pathname.startsWith("/api/")) return;
  if (req.method !== "GET") return;

  if (req.mode === "navigate") {
    // the app's own page opens from the cache, offline too; other pages (e.g. the staff
    // screens and the API schema served by the same server) go to the network as usual
    if (!APP_PAGES.has(url.pathname)) return;
    event.respondWith((async () => {
      const cached = await caches.match("/index.html", { cacheName: CACHE });
      if (cached) return cached;
      return fetch(req);
    })());
    return;
  }

  event.respondWith((async () => {
    const cached = await caches.match(url.pathname, { cacheName: CACHE });
    return cached || fetch(req);
  })());
});
