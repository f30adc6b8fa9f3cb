// Boot, hash router, top bar with the sync badge, bottom navigation, banners (ready for offline or
// not yet, new version, storage not persistent, device revoked). The app opens fully offline once
// signed in. The service worker is registered by js/register_sw.js, before any of this loads.

import * as db from "./db.js";
import * as model from "./model.js";
import { sync } from "./sync.js";
import { t, setLang, getLang } from "./i18n.js";
import { h, clear, replace, append } from "./dom.js";
import { icon } from "./icons.js";
import { relTime } from "./format.js";
import { invalidate } from "./lookups.js";
import { swEvents, swRegistration, swSupported } from "./register_sw.js";
import { readiness, watchReadiness, refresh as refreshReadiness } from "./offline_ready.js";

import login from "./views/login.js";
import households from "./views/households.js";
import household from "./views/household.js";
import householdEdit from "./views/household_edit.js";
import residentEdit from "./views/resident_edit.js";
import visit from "./views/visit.js";
import visitDetail from "./views/visit_detail.js";
import matter from "./views/matter.js";
import matters from "./views/matters.js";
import matterDetail from "./views/matter_detail.js";
import syncPanel from "./views/sync_panel.js";
import conflicts from "./views/conflicts.js";
import proxyHome from "./views/proxy_home.js";
import packing from "./views/packing.js";

const ROUTES = [
  ["", households],
  ["households", households],
  ["household/new", householdEdit],
  ["household/:id", household],
  ["household/:id/edit", householdEdit],
  ["household/:id/resident/new", residentEdit],
  ["household/:id/visit", visit],
  ["household/:id/matter", matter],
  ["resident/:id/edit", residentEdit],
  ["visit/:id", visitDetail],
  ["matters", matters],
  ["matter/:id", matterDetail],
  ["sync", syncPanel],
  ["conflicts", conflicts],
  ["proxy", proxyHome],
  ["proxy/packing", packing],
  ["login", login],
];

// A proxy agent's first tab is their delegated matters (代办), not the grid's households.
const AGENT_TABS = [
  ["proxy", "#/proxy", "home", "nav.proxy"],
  ["matters", "#/matters", "list", "nav.matters"],
  ["sync", "#/sync", "sync", "nav.sync"],
  ["conflicts", "#/conflicts", "conflict", "nav.conflicts"],
];

function tabs() {
  return state.session && state.session.user && state.session.user.role === "proxy_agent" ? AGENT_TABS : TABS;
}

function homeView() {
  return state.session && state.session.user && state.session.user.role === "proxy_agent" ? proxyHome : households;
}

const TABS = [
  ["households", "#/households", "home", "nav.households"],
  ["matters", "#/matters", "list", "nav.matters"],
  ["sync", "#/sync", "sync", "nav.sync"],
  ["conflicts", "#/conflicts", "conflict", "nav.conflicts"],
];

const state = {
  session: null,
  current: null,       // {view, ctx, path}
  renderSeq: 0,
  cleanups: [],
  refreshTimer: null,
  refreshWanted: false,
  updateRequested: false,
  storageNoticeShown: false,
  revokedMessage: null,
};

const el = {};

// ---- routing ---------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  const query = Object.fromEntries(new URLSearchParams(qs || ""));
  return { path: path.replace(/\/+$/, ""), query };
}

function match(path) {
  const segs = path ? path.split("/") : [];
  for (const [pattern, view] of ROUTES) {
    const ps = pattern ? pattern.split("/") : [];
    if (ps.length !== segs.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < ps.length; i++) {
      if (ps[i].startsWith(":")) params[ps[i].slice(1)] = decodeURIComponent(segs[i]);
      else if (ps[i] !== segs[i]) { ok = false; break; }
    }
    if (ok) return { view, params };
  }
  return null;
}

function depth() {
  return (history.state && history.state.depth) || 0;
}

export function navigate(path, { replace: rep = false } = {}) {
  path = path.replace(/^#?\/?/, "");
  const st = history.state || {};
  // "save and go back to where I came from": step back instead of stacking a second copy
  if (rep && st.prev !== undefined && st.prev === path && depth() > 0) {
    history.back();
    return;
  }
  const hash = "#/" + path;
  if (rep) history.replaceState({ depth: depth(), prev: st.prev }, "", hash);
  else history.pushState({ depth: depth() + 1, prev: currentPath() }, "", hash);
  route();
}

function currentPath() {
  return location.hash.replace(/^#\/?/, "");
}

function goBack(fallback) {
  if (depth() > 0) history.back();
  else navigate(fallback || "households", { replace: true });
}

function runCleanups() {
  for (const fn of state.cleanups.splice(0)) {
    try { fn(); } catch (e) { console.warn(e); }
  }
}

function isDirty() {
  const main = el.main;
  const active = document.activeElement;
  // a focused text box (the search box too) would lose focus and the keyboard if replaced now
  if (active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== "file") return true;
  for (const f of main.querySelectorAll("input, textarea")) {
    if (f.dataset.keep || f.type === "file" || f.type === "hidden") continue;
    if (f.value !== f.defaultValue) return true;
  }
  return false;
}

async function route({ keepScroll = false } = {}) {
  const seq = ++state.renderSeq;
  const { path, query } = parseHash();
  let m = match(path) || { view: homeView(), params: {} };
  if (!state.session && m.view !== login) m = { view: login, params: {} };
  if (state.session && m.view === login) m = { view: homeView(), params: {} };
  if (m.view === households && !path) m = { view: homeView(), params: {} };
  if (m.view === households && homeView() === proxyHome) m = { view: proxyHome, params: {} };
  const { view, params } = m;

  const scrollY = window.scrollY;
  runCleanups();
  const ctx = {
    params, query, path,
    me: state.session ? state.session.user : null,
    session: state.session,
    navigate,
    back: (fallback) => goBack(fallback),
    toast,
    refresh: () => route({ keepScroll: true }),
    onCleanup: (fn) => state.cleanups.push(fn),
    setTitle: (title) => { if (seq === state.renderSeq) el.title.textContent = title; },
    signedIn,
    signedOut,
    relogin,
    revokedMessage: state.revokedMessage,
  };
  state.current = { view, ctx, path };
  setChrome(view, ctx);
  let node;
  try {
    node = await view.render(ctx);
  } catch (e) {
    console.error(e);
    node = h("div", { class: "empty" }, h("p", null, t("common.error_view")), h("p", { class: "muted small" }, String(e && e.message || e)));
  }
  if (seq !== state.renderSeq) return;
  replace(el.main, node);
  el.main.setAttribute("aria-busy", "false");
  window.scrollTo(0, keepScroll ? scrollY : 0);
  state.refreshWanted = false;
}

// Re-render list and detail screens when the data changes (a pull page landed, an edit was saved),
// but never under the user's fingers: a screen with typed, unsaved input waits.
function scheduleRefresh() {
  invalidate();
  updateCounts();
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => {
    const cur = state.current;
    if (!cur || !cur.view.live) return;
    if (isDirty()) { state.refreshWanted = true; return; }
    route({ keepScroll: true });
  }, 300);
}

// ---- chrome: top bar, nav, banners -------------------------------------------------------------

function buildChrome() {
  el.main = document.getElementById("app");
  el.top = document.getElementById("topbar");
  el.nav = document.getElementById("nav");
  el.banners = document.getElementById("banners");
  el.toast = document.getElementById("toast");

  el.backBtn = h("button", { type: "button", class: "top-btn back", onclick: () => goBack(state.current && state.current.view.up ? state.current.view.up(state.current.ctx) : "households") }, icon("back"));
  el.title = h("h1", { class: "top-title" });
  el.badge = h("button", { type: "button", class: "sync-badge", onclick: () => navigate("sync") });
  el.langBtn = h("button", { type: "button", class: "top-btn lang", onclick: toggleLang });
  replace(el.top, el.backBtn, el.title, el.badge, el.langBtn);

  el.tabs = {};
  el.tabCounts = {};
  replace(el.nav, tabs().map(([key, href, ic, label]) => {
    const count = h("span", { class: "nav-count", hidden: true });
    const a = h("a", { href, class: "nav-tab", dataset: { tab: key } }, icon(ic), h("span", { class: "nav-label" }, t(label)), count);
    el.tabs[key] = a;
    el.tabCounts[key] = count;
    return a;
  }));
  el.nav.setAttribute("aria-label", t("nav.label"));
}

function setChrome(view, ctx) {
  const signed = !!state.session;
  document.body.classList.toggle("signed-out", !signed);
  el.nav.hidden = !signed;
  el.badge.hidden = !signed;
  el.backBtn.hidden = !view.up;
  el.backBtn.setAttribute("aria-label", t("common.back"));
  el.title.textContent = view.title ? view.title(ctx) : t("app.name");
  document.title = `${el.title.textContent} · ${t("app.name")}`;
  el.langBtn.textContent = getLang() === "en" ? "中" : "EN";
  el.langBtn.setAttribute("aria-label", t("lang.switch"));
  for (const [key, a] of Object.entries(el.tabs)) {
    if (key === view.tab) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function toggleLang() {
  const next = getLang() === "en" ? "zh-CN" : "en";
  setLang(next);
  await db.setMeta("lang", next).catch(() => {});
  buildChrome();
  renderBadge(sync.status());
  updateCounts();
  renderBanners();
  route({ keepScroll: true });
}

function renderBadge(s) {
  if (!el.badge) return;
  const offline = !navigator.onLine || (s.lastError && s.lastError.code === "network");
  let text;
  let cls = "ok";
  if (s.running) { text = t("badge.running"); cls = "running"; }
  else if (s.pending > 0) { text = offline ? t("badge.offline_pending", { n: s.pending }) : t("badge.pending", { n: s.pending }); cls = "pending"; }
  else if (offline) { text = t("badge.offline"); cls = "offline"; }
  else if (s.lastError && s.lastError.code === "unauthorized") { text = t("badge.signin"); cls = "error"; }
  else if (s.lastSyncAt) { text = t("badge.synced", { age: relTime(s.lastSyncAt, Date.now()) }); }
  else { text = t("badge.never"); cls = "pending"; }
  el.badge.className = "sync-badge " + cls;
  replace(el.badge, s.running ? h("span", { class: "spinner", "aria-hidden": "true" }) : null, h("span", null, text));
  el.badge.setAttribute("aria-label", t("badge.label", { state: text }));
}

async function updateCounts() {
  if (!state.session || !el.tabCounts) return;
  try {
    const list = await model.list("conflicts");
    const seen = new Set((await db.getMeta("rejected_seen")) || []);
    const open = list.filter((c) => c.status === "open" && c.kind !== "rejected").length;
    const rejected = list.filter((c) => c.status === "open" && c.kind === "rejected" && !seen.has(c.id)).length;
    setCount("conflicts", open);
    setCount("sync", rejected);
  } catch (e) { /* signed out meanwhile */ }
}

function setCount(tab, n) {
  const c = el.tabCounts[tab];
  if (!c) return;
  c.hidden = !n;
  c.textContent = n > 99 ? "99+" : String(n);
}

export function toast(message, { kind = "ok", ms = 2600 } = {}) {
  el.toast.className = "toast show " + kind;
  el.toast.textContent = message;
  clearTimeout(el.toastTimer);
  el.toastTimer = setTimeout(() => { el.toast.className = "toast"; }, ms);
}

// Banners: ready for offline (or what is missing), the new version, storage that the browser may
// evict, a revoked device.
const banners = { update: false, storage: false, readiness: null, readyNews: false };

function missingText(r) {
  const items = r.missing.filter((k) => k !== "unsupported").map((k) => {
    if (k === "worker") return r.shell && r.shell.total ? t("offline.item_worker_n", { done: r.shell.cached, total: r.shell.total }) : t("offline.item_worker");
    if (k === "shell") return t("offline.item_shell", { done: r.shell ? r.shell.cached : 0, total: r.shell ? r.shell.total : 0 });
    if (k === "signin") return t("offline.item_signin");
    return t("offline.item_sync");
  });
  return t("offline.missing", { items: items.join(t("offline.item_sep")) });
}

function readinessBanner() {
  const r = banners.readiness;
  if (!r) return null;
  if (r.ready) {
    // Said once, when this phone becomes ready (the moment the worker may leave signal); the sync
    // panel says it always.
    if (!banners.readyNews) return null;
    return h("div", { class: "banner banner-ok", role: "status", dataset: { testid: "offline-ready", state: "ready" } },
      h("span", null, t("offline.ready")),
      h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => { banners.readyNews = false; renderBanners(); } }, t("common.dismiss")));
  }
  if (r.missing.includes("unsupported")) {
    return h("div", { class: "banner banner-warn", role: "status", dataset: { testid: "offline-ready", state: "unsupported" } },
      h("span", null, t("offline.unsupported")));
  }
  const offline = !navigator.onLine;
  return h("div", { class: "banner banner-warn", role: "status", dataset: { testid: "offline-ready", state: offline ? "not-ready-offline" : "preparing" } },
    h("span", null,
      h("strong", null, offline ? t("offline.not_ready_offline") : t("offline.preparing")), " ",
      missingText(r),
      r.installError && !offline ? " " + t("offline.retrying") : ""));
}

function renderBanners() {
  clear(el.banners);
  append(el.banners, readinessBanner());
  if (banners.update) {
    append(el.banners, h("div", { class: "banner banner-info", role: "status" },
      h("span", null, t("banner.update")),
      h("button", { type: "button", class: "btn btn-small btn-primary", onclick: applyUpdate }, t("banner.update_reload"))));
  }
  if (banners.storage && state.session) {
    const ios = isIOS() && !isStandalone();
    append(el.banners, h("div", { class: "banner banner-warn", role: "status" },
      h("span", null, ios ? t("banner.storage_ios") : t("banner.storage")),
      h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: dismissStorage }, t("common.dismiss"))));
  }
}

// ---- service worker: update banner --------------------------------------------------------------
// js/register_sw.js registered the worker before this module loaded; here only the update banner.

function watchUpdates() {
  if (!swSupported()) return;
  const check = () => {
    const registration = swRegistration();
    if (registration && registration.waiting && navigator.serviceWorker.controller) {
      banners.update = true;
      renderBanners();
    }
  };
  check();
  swEvents.addEventListener("registered", check);
  swEvents.addEventListener("installed", check);
  // Reload only when the user asked for the new version: the local data is not touched by any of it.
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    if (state.updateRequested) location.reload();
  });
  setInterval(() => {
    const registration = swRegistration();
    if (registration && navigator.onLine) registration.update().catch(() => {});
  }, 60 * 60 * 1000);
}

function applyUpdate() {
  state.updateRequested = true;
  const registration = swRegistration();
  if (registration && registration.waiting) registration.waiting.postMessage({ type: "SKIP_WAITING" });
  else location.reload();
}

// ---- storage ----------------------------------------------------------------------------------

function isIOS() {
  return /iPhone|iPad|iPod/.test(navigator.userAgent) || (navigator.platform === "MacIntel" && navigator.maxTouchPoints > 1);
}

function isStandalone() {
  return (window.matchMedia && window.matchMedia("(display-mode: standalone)").matches) || navigator.standalone === true;
}

export async function storagePersisted() {
  if (!navigator.storage || !navigator.storage.persisted) return null;
  return navigator.storage.persisted();
}

async function checkStorage() {
  if (!navigator.storage || !navigator.storage.persist) return;
  let persisted = await navigator.storage.persisted().catch(() => false);
  if (!persisted) persisted = await navigator.storage.persist().catch(() => false);
  refreshReadiness();
  if (persisted) { banners.storage = false; renderBanners(); return; }
  const dismissed = await db.getMeta("storage_notice_dismissed").catch(() => null);
  if (dismissed && Date.now() - dismissed < 3 * 86400000) return;
  banners.storage = true;
  renderBanners();
}

async function dismissStorage() {
  banners.storage = false;
  renderBanners();
  await db.setMeta("storage_notice_dismissed", Date.now()).catch(() => {});
}

// ---- session ------------------------------------------------------------------------------------

async function signedIn(session) {
  await model.setSession(session);
  state.session = session;
  state.revokedMessage = null;
  buildChrome();
  sync.start();
  checkStorage();
  navigate("households", { replace: true });
  updateCounts();
}

/** The server no longer accepts the token: sign in again, keeping the outbox and the replica. */
function relogin() {
  sync.stop();
  state.session = null;
  state.revokedMessage = t("login.expired");
  navigate("login", { replace: true });
}

function signedOut(message = null) {
  sync.stop();
  state.session = null;
  state.revokedMessage = message;
  banners.storage = false;
  renderBanners();
  navigate("login", { replace: true });
}

// ---- boot ------------------------------------------------------------------------------------

async function boot() {
  await db.open();
  setLang((await db.getMeta("lang")) || "zh-CN");
  buildChrome();
  state.session = (await model.loadSession()) || null;
  if (state.session) buildChrome();

  sync.addEventListener("status", (e) => renderBadge(e.detail));
  sync.addEventListener("changed", scheduleRefresh);
  sync.addEventListener("revoked", () => signedOut(t("login.revoked")));
  window.addEventListener("gridbook:changed", scheduleRefresh);
  // An edit made with signal goes out within seconds rather than at the next 5-minute tick.
  window.addEventListener("gridbook:changed", () => {
    clearTimeout(state.pushTimer);
    state.pushTimer = setTimeout(() => { if (state.session && navigator.onLine) sync.run(); }, 3000);
  });
  window.addEventListener("popstate", () => route());
  window.addEventListener("online", () => renderBadge(sync.status()));
  window.addEventListener("offline", () => renderBadge(sync.status()));
  // Links inside the app go through navigate() so that history depth (for the back button) is kept.
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[href^='#/']");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey) return;
    e.preventDefault();
    navigate(a.getAttribute("href").slice(2));
  });
  // Refresh what waited for the user to finish typing.
  document.addEventListener("focusout", () => {
    if (state.refreshWanted) setTimeout(() => { if (state.refreshWanted && !isDirty()) route({ keepScroll: true }); }, 200);
  });
  setInterval(() => renderBadge(sync.status()), 30000);

  if (!history.state) history.replaceState({ depth: 0 }, "", location.hash || "#/households");
  renderBadge(sync.status());
  watchUpdates();
  readiness.addEventListener("change", (e) => {
    const { state: r, previous } = e.detail;
    // a phone that was not ready and now is: tell the worker they may go
    if (r.ready && previous && !previous.ready) banners.readyNews = true;
    if (!r.ready) banners.readyNews = false;
    banners.readiness = r;
    renderBanners();
  });
  window.addEventListener("online", renderBanners);
  window.addEventListener("offline", renderBanners);
  watchReadiness();
  if (state.session) {
    sync.start();
    checkStorage();
    updateCounts();
  }
  await route();
  document.body.classList.add("ready");
}

boot().catch((e) => {
  console.error(e);
  const main = document.getElementById("app");
  replace(main, h("div", { class: "empty" }, h("p", null, t("common.boot_failed")), h("p", { class: "muted small" }, String(e && e.message || e))));
});
