// Is this phone ready to work with no signal? (issue 18) The facts, computed here without any DOM;
// app.js shows them as a banner in words, the sync panel with details.
//
//   worker     a service worker controls this page: the app itself opens with no network
//   shell      that worker's cache holds every file of the app (asked of the worker itself)
//   firstSync  signed in, and a whole sync has finished: the grid's data is on the phone
//   persisted  the browser promised not to evict this site's storage (true, false, or null when
//              it cannot say)
//
// Ready means the first three. Persistence is shown but not required: most browsers grant it only
// to an installed app or a much-used site, and until they do the data is there all the same.

import * as db from "./db.js";
import { sync } from "./sync.js";
import { swEvents, swState } from "./register_sw.js";

export const readiness = new EventTarget();

let current = null;
let shellOf = null;   // {worker, status}: the controller's shell, once complete (it cannot shrink)
let checking = null;
let again = false;
let timer = null;

/** Ask a worker for its cache's content (js/sw.js answers SHELL_STATUS); null when it does not answer. */
function askShell(worker, timeoutMs = 10000) {
  return new Promise((resolve) => {
    const ch = new MessageChannel();
    const t = setTimeout(() => { ch.port1.close(); resolve(null); }, timeoutMs);
    ch.port1.onmessage = (e) => {
      clearTimeout(t);
      ch.port1.close();
      resolve(e.data && !e.data.error ? e.data : null);
    };
    try {
      worker.postMessage({ type: "SHELL_STATUS" }, [ch.port2]);
    } catch (e) {
      clearTimeout(t);
      resolve(null);
    }
  });
}

async function shellStatus(controller) {
  if (!controller) return null;
  if (shellOf && shellOf.worker === controller) return shellOf.status;
  const s = await askShell(controller);
  if (s && s.cached === s.total) shellOf = { worker: controller, status: s };
  return s;
}

/** The facts and what is missing: {ready, missing: [...], supported, worker, version, shell, ...}. */
export async function check() {
  const sw = swState();
  const controller = sw.supported ? navigator.serviceWorker.controller : null;
  const [shell, session, cursor, lastSyncAt, persisted] = await Promise.all([
    shellStatus(controller),
    db.getMeta("session").catch(() => null),
    db.getMeta("cursor").catch(() => null),
    db.getMeta("last_sync_at").catch(() => null),
    navigator.storage && navigator.storage.persisted ? navigator.storage.persisted().catch(() => null) : null,
  ]);
  // While no worker controls the page, the one installing says how far it got.
  const progress = !controller && sw.progress ? { cached: sw.progress.cached, total: sw.progress.total } : null;
  const facts = {
    supported: sw.supported,
    worker: !!controller,
    version: shell ? shell.version : null,
    shell: shell ? { cached: shell.cached, total: shell.total } : progress,
    shellComplete: !!(shell && shell.total > 0 && shell.cached === shell.total),
    signedIn: !!session,
    firstSync: !!(session && cursor && lastSyncAt),
    lastSyncAt: lastSyncAt || null,
    persisted: typeof persisted === "boolean" ? persisted : null,
    installError: controller ? null : sw.lastError,
  };
  const missing = [];
  if (!facts.supported) missing.push("unsupported");
  else if (!facts.worker) missing.push("worker");
  else if (!facts.shellComplete) missing.push("shell");
  if (!facts.signedIn) missing.push("signin");
  else if (!facts.firstSync) missing.push("sync");
  return { ...facts, missing, ready: missing.length === 0 };
}

/** The latest facts (null before the first check). */
export function currentReadiness() {
  return current;
}

/** Check again soon; "change" is emitted when anything differs. Calls close together count once. */
export function refresh() {
  clearTimeout(timer);
  timer = setTimeout(run, 150);
}

async function run() {
  if (checking) { again = true; return; }
  checking = (async () => {
    do {
      again = false;
      const next = await check();
      const changed = JSON.stringify(next) !== JSON.stringify(current);
      const previous = current;
      current = next;
      if (changed) readiness.dispatchEvent(new CustomEvent("change", { detail: { state: next, previous } }));
    } while (again);
  })().finally(() => { checking = null; });
  return checking;
}

let watching = false;

/** Start following the facts (once per page): the worker, the sync loop, the network, sign-in. */
export function watchReadiness() {
  if (watching) return;
  watching = true;
  swEvents.addEventListener("change", refresh);
  sync.addEventListener("status", refresh);
  if (typeof window !== "undefined") {
    window.addEventListener("gridbook:changed", refresh);
    window.addEventListener("online", refresh);
    window.addEventListener("offline", refresh);
  }
  run();
}
