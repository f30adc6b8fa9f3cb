// The sync panel: what waits to be sent, when the phone last synced, a "sync now" button with
// progress, whether this phone is ready to work offline (and what is missing), whether the browser
// may evict the data, the edits the server refused (with its reason, to fix and resend or
// dismiss), the account and the language.

import { h, clear, append, replace } from "../dom.js";
import { t, has, getLang, setLang, LANGS } from "../i18n.js";
import * as model from "../model.js";
import * as db from "../db.js";
import { sync } from "../sync.js";
import { absTime, relTime, bytes } from "../format.js";
import { lookups } from "../lookups.js";
import { section, empty, button, confirmButton, facts, segmented } from "../ui.js";
import { setPrefill } from "../prefill.js";
import { icon } from "../icons.js";
import { fieldLabel, display, ID_FIELDS } from "../values.js";
import { describe } from "./conflicts.js";
import { readiness, currentReadiness, refresh as refreshReadiness } from "../offline_ready.js";

const ROLES = ["grid_worker", "proxy_agent", "staff", "admin"];

function errorText(err) {
  if (!err) return "";
  if (err.code === "network") return t("syncp.error_network");
  if (err.code === "unauthorized") return t("syncp.error_unauthorized");
  if (/^http_5|internal|unavailable/.test(err.code)) return t("syncp.error_server");
  return t("syncp.error_other", { message: err.message || err.code });
}

/** Where "修改后重发" takes a rejected mutation, with its values waiting in the form. */
async function resend(ctx, c) {
  const mu = c.mutation || {};
  const f = mu.fields && !mu.fields._truncated ? mu.fields : {};
  const coll = c.collection || mu.collection;
  const rid = c.record_id || mu.id;
  const exists = rid ? await model.view(coll, rid) : null;
  const live = exists && !exists.deleted && !exists._deleted;
  const isCreate = mu.base === 0;
  const extra = { conflictId: c.id };
  if (coll === "households") {
    if (isCreate) { setPrefill(coll, null, f, extra); return ctx.navigate("household/new"); }
    if (live) { setPrefill(coll, rid, f, extra); return ctx.navigate(`household/${rid}/edit`); }
  }
  if (coll === "residents") {
    const hid = f.household_id || (exists && exists.household_id);
    if (isCreate && hid) { setPrefill(coll, null, f, extra); return ctx.navigate(`household/${hid}/resident/new`); }
    if (live && !isCreate) { setPrefill(coll, rid, f, extra); return ctx.navigate(`resident/${rid}/edit`); }
  }
  if (coll === "visits" && f.household_id) { setPrefill(coll, null, f, extra); return ctx.navigate(`household/${f.household_id}/visit`); }
  if (coll === "matters") {
    const hid = f.household_id || (exists && exists.household_id);
    if (live && !isCreate) return ctx.navigate(`matter/${rid}`);
    if (hid) { setPrefill(coll, null, f, extra); return ctx.navigate(`household/${hid}/matter`); }
  }
  if (coll === "matter_events" && f.matter_id) return ctx.navigate(`matter/${f.matter_id}`);
  if (coll === "conflicts") return ctx.navigate("conflicts");
  ctx.toast(t("syncp.cannot_resend"), { kind: "error" });
}

function rejectedItem(ctx, c, label) {
  const mu = c.mutation || {};
  const coll = c.collection || mu.collection;
  const err = c.error || {};
  const fields = mu.fields && !mu.fields._truncated ? Object.entries(mu.fields).filter(([k]) => !ID_FIELDS.has(k)) : [];
  const resolved = c.status !== "open";
  const reasonKey = "reject." + err.code;
  return h("li", { class: ["card", "rejected", resolved ? "resolved" : null], dataset: { testid: "rejected-item" } },
    h("div", { class: "row-title" },
      h("strong", { class: "cap" }, t("syncp.rejected_what", { op: t(mu.op === "delete" ? "op.delete" : mu.base === 0 ? "op.create" : "op.update"), what: t("coll." + coll) })),
      resolved ? h("span", { class: "tag tag-muted" }, t("syncp.rejected_done")) : null),
    label ? h("p", { class: "row-sub" }, label) : null,
    h("p", { class: "reason" }, icon("conflict"), h("span", null, has(reasonKey) ? t(reasonKey) : t("reject.other"))),
    err.message ? h("p", { class: "muted small" }, t("syncp.server_said", { message: err.message })) : null,
    fields.length ? h("dl", { class: "facts small" }, fields.slice(0, 8).map(([k, v]) =>
      h("div", { class: "fact" }, h("dt", null, fieldLabel(coll, k)), h("dd", null, display(k, v))))) : null,
    h("p", { class: "muted small" }, mu.at ? t("syncp.made_at", { at: absTime(mu.at) }) : ""),
    resolved ? null : h("div", { class: "form-actions inline" },
      button(t("syncp.ignore"), async () => { await model.resolveConflict(c.id, "current"); ctx.toast(t("syncp.ignored")); }, "btn btn-secondary", { dataset: { testid: "reject-ignore" } }),
      button(t("syncp.fix_resend"), () => resend(ctx, c), "btn btn-primary", { dataset: { testid: "reject-resend" } })));
}

export default {
  title: () => t("syncp.title"),
  tab: "sync",
  live: true,
  async render(ctx) {
    const statusBox = h("div", { class: "card sync-status", "aria-live": "polite" });
    const runBtn = h("button", { type: "button", class: "btn btn-primary btn-big btn-block", dataset: { testid: "sync-now" } }, icon("sync"), t("syncp.sync_now"));
    runBtn.addEventListener("click", () => { sync.run(); });

    async function paint(s) {
      const c = await db.counts().catch(() => ({ outbox: s.pending, blobsPending: 0 }));
      const p = s.progress || {};
      const offline = !navigator.onLine;
      runBtn.disabled = !!s.running;
      replace(runBtn, s.running ? h("span", { class: "spinner" }) : icon("sync"), s.running ? t("syncp.running") : t("syncp.sync_now"));
      const rows = [
        [t("syncp.pending"), h("strong", { dataset: { testid: "pending-count" } }, t("syncp.pending_n", { n: c.outbox }))],
        [t("syncp.photos_pending"), t("syncp.photos_n", { n: c.blobsPending })],
        [t("syncp.last_sync"), s.lastSyncAt ? `${absTime(s.lastSyncAt)}（${relTime(s.lastSyncAt, Date.now())}）` : t("syncp.never")],
        [t("syncp.network"), offline ? t("syncp.offline") : t("syncp.online")],
      ];
      const bars = [];
      if (s.running) {
        if (p.toPush) bars.push(bar(t("syncp.progress_push", { done: p.pushed || 0, total: p.toPush }), p.pushed || 0, p.toPush));
        bars.push(bar(t("syncp.progress_pull", { done: p.recordsDone || 0 }), p.recordsTotal ? p.recordsDone : null, p.recordsTotal || null));
        if (p.photosTotal) bars.push(bar(t("syncp.progress_photos", { done: p.photosDone || 0, total: p.photosTotal, left: p.photosTotal - (p.photosDone || 0) }), p.photosDone || 0, p.photosTotal));
      }
      replace(statusBox,
        facts(rows),
        bars.length ? h("div", { class: "bars" }, bars) : null,
        s.lastError && !s.running ? h("p", { class: "form-error" }, errorText(s.lastError)) : null,
        s.lastError && s.lastError.code === "unauthorized" ? button(t("syncp.sign_in_again"), () => ctx.relogin(), "btn btn-secondary btn-block") : null,
        offline ? h("p", { class: "muted small" }, t("syncp.offline_hint")) : null);
    }
    function bar(label, value, max) {
      const pr = h("progress", { class: "progress", max: max || 1 });
      if (value !== null && value !== undefined && max) pr.value = value;
      else pr.removeAttribute("value"); // indeterminate: the number of pages is not known up front
      return h("div", { class: "bar" }, h("div", { class: "small" }, label), pr);
    }
    const onStatus = (e) => paint(e.detail);
    sync.addEventListener("status", onStatus);
    ctx.onCleanup(() => sync.removeEventListener("status", onStatus));
    paint(sync.status());

    // ready for offline: the same facts as the banner, each on its own line
    const offlineBox = h("div", { class: "card", dataset: { testid: "offline-details" } }, h("p", null, t("syncp.storage_checking")));
    function paintOffline(r) {
      if (!r) return;
      const shellText = r.shell ? t("offline.shell_n", { done: r.shell.cached, total: r.shell.total }) : t("offline.shell_unknown");
      const storage = r.persisted === null ? t("syncp.storage_unknown") : r.persisted ? t("syncp.storage_persisted") : t("syncp.storage_not_persisted");
      replace(offlineBox,
        facts([
          [t("offline.state"), h("strong", { dataset: { testid: "offline-state", ready: String(r.ready) } }, r.ready ? t("offline.state_ready") : t("offline.state_not_ready"))],
          [t("offline.worker"), r.missing.includes("unsupported") ? t("offline.unsupported")
            : r.worker ? t("offline.worker_on", { version: r.version || "?" })
            : r.shell ? t("offline.worker_installing", { done: r.shell.cached, total: r.shell.total }) : t("offline.worker_off")],
          [t("offline.shell"), shellText],
          [t("offline.first_sync"), !r.signedIn ? t("offline.first_sync_signin") : r.firstSync ? t("offline.first_sync_done") : t("offline.first_sync_not")],
          [t("offline.storage"), storage],
        ]),
        r.installError && !r.worker ? h("p", { class: "form-error" }, t("offline.error", { error: r.installError })) : null,
        h("p", { class: "muted small" }, r.ready ? t("offline.hint_ready") : t("offline.hint_not_ready")));
    }
    const onReadiness = (e) => paintOffline(e.detail.state);
    readiness.addEventListener("change", onReadiness);
    ctx.onCleanup(() => readiness.removeEventListener("change", onReadiness));
    paintOffline(currentReadiness());
    refreshReadiness();

    // storage
    const storageBox = h("div", { class: "card" }, h("p", null, t("syncp.storage_checking")));
    (async () => {
      const persisted = navigator.storage && navigator.storage.persisted ? await navigator.storage.persisted().catch(() => null) : null;
      const est = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate().catch(() => null) : null;
      replace(storageBox,
        facts([
          [t("syncp.storage_state"), persisted === null ? t("syncp.storage_unknown") : persisted ? t("syncp.storage_persisted") : t("syncp.storage_not_persisted")],
          [t("syncp.storage_usage"), est ? t("syncp.storage_usage_n", { used: bytes(est.usage || 0), quota: bytes(est.quota || 0) }) : null],
        ]),
        persisted === false ? h("p", { class: "banner banner-warn inline" }, t("syncp.storage_advice")) : null,
        persisted === false && navigator.storage && navigator.storage.persist ? button(t("syncp.storage_request"), async () => {
          const ok = await navigator.storage.persist().catch(() => false);
          ctx.toast(ok ? t("syncp.storage_persisted") : t("syncp.storage_refused"), { kind: ok ? "ok" : "error" });
          if (ok) ctx.refresh();
        }, "btn btn-secondary btn-block") : null);
    })();

    // rejected mutations
    const conflicts = await model.list("conflicts");
    const rejected = conflicts.filter((c) => c.kind === "rejected")
      .sort((a, b) => (a.status === "open" ? 0 : 1) - (b.status === "open" ? 0 : 1) || (Date.parse(b.created_at) || 0) - (Date.parse(a.created_at) || 0));
    const seen = new Set((await db.getMeta("rejected_seen")) || []);
    if (rejected.some((c) => !seen.has(c.id))) {
      await db.setMeta("rejected_seen", rejected.map((c) => c.id));
      window.dispatchEvent(new CustomEvent("gridbook:changed"));
    }
    const openRejected = rejected.filter((c) => c.status === "open");
    const shownRejected = [...openRejected, ...rejected.filter((c) => c.status !== "open").slice(0, 5)];
    const labels = new Map(await Promise.all(shownRejected.map(async (c) => [c.id, await describe(c)])));

    // account
    const me = ctx.me;
    const l = await lookups();
    const areaNames = (me.areas || []).map((a) => (l.areas.get(a) || {}).name).filter(Boolean).join("、");
    async function signOut(force = false) {
      try {
        await model.signOut({ force });
        ctx.signedOut();
      } catch (e) {
        if (e.code === "outbox_not_empty") {
          ctx.toast(t("syncp.signout_pending", { n: e.pending }), { kind: "error", ms: 6000 });
        } else throw e;
      }
    }
    const pendingNow = (await db.counts().catch(() => ({ outbox: 0 }))).outbox;
    const signOutBtn = pendingNow
      ? confirmButton(t("syncp.signout"), t("syncp.signout_force", { n: pendingNow }), () => signOut(true), "btn btn-danger btn-block")
      : confirmButton(t("syncp.signout"), t("syncp.signout_confirm"), () => signOut(false), "btn btn-secondary btn-block");
    const langSeg = segmented(LANGS, getLang(), async (v) => {
      if (v === getLang()) return;
      setLang(v);
      await db.setMeta("lang", v).catch(() => {});
      location.reload();
    }, { name: t("lang.label") });

    return h("div", { class: "view sync-panel" },
      statusBox,
      runBtn,
      section(t("offline.title"), offlineBox),
      section(t("syncp.rejected", { n: openRejected.length }),
        h("p", { class: "muted small" }, t("syncp.rejected_hint")),
        shownRejected.length ? h("ul", { class: "rejected-list" }, shownRejected.map((c) => rejectedItem(ctx, c, labels.get(c.id)))) : empty(t("syncp.rejected_none"))),
      section(t("syncp.storage"), storageBox),
      section(t("syncp.account"),
        h("div", { class: "card" },
          facts([
            [t("syncp.user"), `${me.display_name || ""}（${me.username}）`],
            [t("syncp.role"), ROLES.includes(me.role) ? t("role." + me.role) : me.role],
            [t("syncp.areas"), areaNames],
            [t("syncp.device"), ctx.session && ctx.session.device_id ? ctx.session.device_id.slice(-12) : null],
          ]),
          pendingNow ? h("p", { class: "field-hint" }, t("syncp.signout_hint", { n: pendingNow })) : null,
          signOutBtn)),
      section(t("lang.label"), langSeg));
  },
};
