// The service worker is versioned and boring (STYLE.md habit 14): the whole app shell is cached
// on install, old caches go on activate, the shell is served cache-first (offline too), and
// /api/ always goes to the network — the data lives in IndexedDB and never depends on this cache.
//
// VERSION changes with every release by itself: the server serves this file with the placeholder
// replaced by a hash of every shell file (server/pwa.py), so any change to the app makes a new
// worker, which installs beside the old one and waits; the app shows "new version — reload", and
// only when the user taps it does it take over. A phone's FIRST worker has nothing to wait for: it
// takes the page at once, so that the phone is ready for offline before the worker leaves signal.
//
// The install survives a flaky link: each file is fetched on its own and retried, and what one
// attempt saved is kept for the next one (the cache is named after the version, and the version is
// a hash of the files' bytes). If an attempt still fails, the page registers again later
// (js/register_sw.js) and only the missing files are fetched.

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
  "/js/offline_ready.js",
  "/js/photo.js",
  "/js/prefill.js",
  "/js/proxy.js",
  "/js/register_sw.js",
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

const ATTEMPTS = 4;     // per file: at once, then after 0.5 s, 1 s and 2 s
const PARALLEL = 6;     // a browser's connections per host: more would only queue

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Every open page hears how far the install got (js/offline_ready.js shows it while a fresh phone
// is not ready yet). Pages not yet controlled count too: on a first visit none is.
async function tell(message) {
  for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
    client.postMessage({ ...message, version: VERSION });
  }
}

async function cachedPaths(cache) {
  return new Set((await cache.keys()).map((r) => new URL(r.url).pathname));
}

async function fetchInto(cache, path) {
  for (let attempt = 1; ; attempt++) {
    try {
      // cache: "reload" so that a stale HTTP cache never ends up in a new version's shell
      const res = await fetch(new Request(path, { cache: "reload" }));
      if (!res.ok || res.type !== "basic") throw new Error(`${path}: HTTP ${res.status}`);
      await cache.put(path, res);
      return;
    } catch (e) {
      if (attempt >= ATTEMPTS) throw e;
      await sleep(250 * 2 ** attempt);
    }
  }
}

async function precache() {
  const cache = await caches.open(CACHE);
  const have = await cachedPaths(cache);
  const todo = SHELL.filter((path) => !have.has(path));
  let cached = SHELL.length - todo.length;
  await tell({ type: "SHELL_PROGRESS", cached, total: SHELL.length });
  const next = () => todo.shift();
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    for (let path = next(); path; path = next()) {
      await fetchInto(cache, path);
      cached += 1;
      await tell({ type: "SHELL_PROGRESS", cached, total: SHELL.length });
    }
  }));
}

self.addEventListener("install", (event) => {
  // First install (no worker active yet): nothing to wait for, so take the page as soon as the
  // shell is in. An update (a worker is active) waits for the user's "reload" (SKIP_WAITING).
  if (!self.registration.active) self.skipWaiting();
  event.waitUntil(precache().catch(async (e) => {
    await tell({ type: "SHELL_FAILED", error: String(e && e.message || e) });
    throw e;
  }));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) {
      if (key.startsWith("gridbook-shell-") && key !== CACHE) await caches.delete(key);
    }
    await self.clients.claim();
  })());
});

// What js/offline_ready.js asks: is this worker's whole shell in its cache?
async function shellStatus() {
  const have = await cachedPaths(await caches.open(CACHE));
  const missing = SHELL.filter((path) => !have.has(path));
  return { type: "SHELL_STATUS", version: VERSION, total: SHELL.length, cached: SHELL.length - missing.length, missing };
}

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "SKIP_WAITING") self.skipWaiting();
  if (type === "SHELL_STATUS" && event.ports[0]) {
    const port = event.ports[0];
    event.waitUntil(shellStatus().then((s) => port.postMessage(s), (e) => port.postMessage({ type: "SHELL_STATUS", error: String(e) })));
  }
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
    event.respondWith(fromShell("/index.html", req));
    return;
  }

  event.respondWith(fromShell(url.pathname, req));
});

// This version's cache first; then the network; with no network, any shell this phone still
// holds (an older version is better than the browser's "no internet" page).
async function fromShell(path, req) {
  const cached = await caches.match(path, { cacheName: CACHE });
  if (cached) return cached;
  try {
    return await fetch(req);
  } catch (e) {
    const older = await caches.match(path);
    if (older) return older;
    throw e;
  }
}
