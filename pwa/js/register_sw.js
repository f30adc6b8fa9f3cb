// Registers the service worker, first thing, on its own (issue 18). index.html loads this module
// before app.js and it imports nothing, so the worker is registered as soon as the page arrives:
// not after the app's 30-odd modules, IndexedDB and the session, any of which can fail or stall
// and, when it did, left a phone that had opened the app online with nothing to open offline.
//
// A registration that fails (the network dropped while /sw.js or a shell file was on its way:
// the browser then forgets the half-installed worker) is tried again with back-off and at once
// when the network comes back, until a worker controls the page. No DOM here; app.js shows the
// update banner and js/offline_ready.js the readiness.

const RETRY_MIN_MS = 3000;
const RETRY_MAX_MS = 2 * 60 * 1000;

const supported = typeof navigator !== "undefined" && "serviceWorker" in navigator;

export const swEvents = new EventTarget();

const state = {
  registration: null,
  attempts: 0,
  lastError: null,   // why the latest attempt failed, if it did
  retryTimer: null,
  progress: null,    // {version, cached, total} while a worker installs
};

export function swSupported() {
  return supported;
}

/** The registration once there is one (null before and without service workers). */
export function swRegistration() {
  return state.registration;
}

/** {attempts, lastError, progress, installing, waiting, active} for the sync panel. */
export function swState() {
  const r = state.registration;
  return {
    supported,
    attempts: state.attempts,
    lastError: state.lastError,
    progress: state.progress,
    installing: !!(r && r.installing),
    waiting: !!(r && r.waiting),
    active: !!(r && r.active),
    controlled: supported && !!navigator.serviceWorker.controller,
  };
}

function emit(type, detail) {
  swEvents.dispatchEvent(new CustomEvent(type, { detail }));
}

function retryLater() {
  if (!supported || navigator.serviceWorker.controller) return;
  clearTimeout(state.retryTimer);
  const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** Math.min(state.attempts - 1, 8));
  state.retryTimer = setTimeout(register, delay);
}

const watched = new WeakSet();

function watchWorker(worker) {
  if (!worker || watched.has(worker)) return;
  watched.add(worker);
  worker.addEventListener("statechange", () => {
    emit("change", swState());
    if (worker.state === "installed") emit("installed", worker);
    // The install failed (a shell file could not be fetched even after retries): unless another
    // worker is there, the browser dropped the registration; try again later.
    if (worker.state === "redundant" && state.registration && !state.registration.active) {
      state.lastError = state.lastError || "install_failed";
      retryLater();
    }
  });
}

async function register() {
  clearTimeout(state.retryTimer);
  if (!supported) return null;
  state.attempts += 1;
  try {
    const r = await navigator.serviceWorker.register("/sw.js");
    if (r !== state.registration) {
      r.addEventListener("updatefound", () => { watchWorker(r.installing); emit("change", swState()); });
    }
    state.registration = r;
    state.lastError = null;
    watchWorker(r.installing);
    emit("registered", r);
  } catch (e) {
    // offline, or /sw.js could not be fetched: harmless when a worker already controls the page
    state.lastError = String((e && e.message) || e);
    retryLater();
  }
  emit("change", swState());
  return state.registration;
}

if (supported) {
  navigator.serviceWorker.addEventListener("message", (e) => {
    const m = e.data || {};
    if (m.type === "SHELL_PROGRESS") {
      state.progress = { version: m.version, cached: m.cached, total: m.total };
      emit("change", swState());
    } else if (m.type === "SHELL_FAILED") {
      state.lastError = m.error || "install_failed";
      emit("change", swState());
    }
  });
  // Messages from the worker are queued until the page says it listens.
  navigator.serviceWorker.startMessages();
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    clearTimeout(state.retryTimer);
    emit("change", swState());
  });
  window.addEventListener("online", () => {
    if (!navigator.serviceWorker.controller) register();
  });
  register();
}
