// The conflicts inbox: two edits met on the same record. Both values side by side, who and when;
// the author (or staff) keeps one, the other, or types the right value. Works offline: the
// resolution is an edit in the outbox like any other (protocol §8).

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { absTime, relTime } from "../format.js";
import { lookups, userName } from "../lookups.js";
import { section, empty, button, pendingMark } from "../ui.js";
import { fieldLabel, display } from "../values.js";

const KINDS = new Set(["field", "delete", "update_deleted", "transition", "delegation"]);
const LONG = new Set(["notes", "description", "narrative", "supervision_note"]);
const STAFF = new Set(["staff", "admin"]);

/** A few words that tell which record a conflict or a rejected edit is about. */
export async function describe(c) {
  const coll = c.collection;
  const f = (c.mutation && c.mutation.fields) || {};
  const rec = c.record_id ? await model.view(coll, c.record_id) : null;
  const hhLabel = (hh) => `${hh.head_name || ""} · ${hh.address || ""}`;
  if (coll === "households" && rec) return hhLabel(rec);
  if (coll === "residents" && rec) return rec.name || "";
  if (coll === "matters" && rec) return rec.title || "";
  if (coll === "matter_events") {
    const mid = (rec && rec.matter_id) || f.matter_id;
    const m = mid ? await model.view("matters", mid) : null;
    if (m) return m.title || "";
    // a delegation conflict reaches an agent whose phone no longer holds the matter: it names it
    const a = c.kind === "delegation" && c.fields && c.fields.assignee_id;
    if (a && a.title) return a.title;
  }
  const hid = f.household_id || (rec && rec.household_id);
  const hh = hid ? await model.view("households", hid) : null;
  return hh ? hhLabel(hh) : "";
}

function linkFor(c) {
  const mu = c.mutation || {};
  if (c.collection === "households") return `#/household/${c.record_id}`;
  if (c.collection === "residents") return `#/resident/${c.record_id}/edit`;
  if (c.collection === "matters") return `#/matter/${c.record_id}`;
  if (c.collection === "matter_events" && mu.fields && mu.fields.matter_id) return `#/matter/${mu.fields.matter_id}`;
  return null;
}

function conflictCard(ctx, c, l, label) {
  const me = ctx.me;
  const fields = c.fields && typeof c.fields === "object" ? Object.entries(c.fields) : [];
  const mineIsIncoming = c.author_id === me.id;
  const isStaff = STAFF.has(me.role);
  const canResolve = mineIsIncoming || isStaff;
  const resolved = c.status !== "open";
  const other = fields.map(([, f]) => f.current_by).find(Boolean);
  const otherName = userName(l, mineIsIncoming ? other : c.author_id, me);
  const side = (which) => (mineIsIncoming ? (which === "incoming" ? "mine" : "theirs") : (which === "incoming" ? "theirs" : "mine"));

  const rows = fields.map(([name, f]) => {
    const cell = (which) => {
      const s = side(which);
      const who = which === "incoming" ? userName(l, c.author_id, me) : userName(l, f.current_by, me);
      const at = which === "incoming" ? f.incoming_at : f.current_at;
      return h("div", { class: ["cv", "cv-" + s, f.winner === which ? "cv-winner" : null] },
        h("div", { class: "cv-head" }, s === "mine" ? t("conflicts.mine") : t("conflicts.theirs"),
          f.winner === which ? h("span", { class: "tag tag-ok" }, t("conflicts.in_effect")) : null),
        h("div", { class: "cv-value" }, display(name, f[which])),
        h("div", { class: "muted small" }, who, at ? ` · ${absTime(at)}` : ""));
    };
    // mine first, then theirs: the same order on every card
    const cells = mineIsIncoming ? [cell("incoming"), cell("current")] : [cell("current"), cell("incoming")];
    return h("div", { class: "cf-field" }, h("div", { class: "cf-label" }, fieldLabel(c.collection, name)), h("div", { class: "cf-values" }, cells));
  });

  if (c.kind === "delegation") {
    // an agent's work that arrived after the matter left them: what it was, who holds the matter now
    const f = (c.fields && c.fields.assignee_id) || {};
    const what = f.kind === "step" && f.step ? t("step." + f.step) : t("event." + (f.kind || "step"));
    rows.splice(0, rows.length, h("div", { class: "cf-field", dataset: { testid: "delegation-conflict" } },
      h("p", null, t("conflicts.delegation_work", { what, who: userName(l, c.author_id, me) })),
      h("p", { class: "muted small" }, t("conflicts.delegation_now", { who: f.current ? userName(l, f.current, me) : "—", status: t("status." + (f.status || "submitted")) }))));
  }
  const actions = h("div", { class: "cf-actions" });
  const editBox = h("div");
  async function resolve(resolution, value) {
    await model.resolveConflict(c.id, resolution, value);
    clear(editBox); // nothing typed is left waiting: the screen may show the outcome now
    ctx.toast(t("common.saved_pending"));
    ctx.refresh();
  }
  // "Keep theirs": `current` writes back the value the server held when the edits met, even when
  // mine had won by time (docs/protocol.md §8).
  function keepCurrentSide() {
    return resolve("current");
  }
  function openEdit() {
    clear(editBox);
    const inputs = fields.map(([name, f]) => {
      const v = f.incoming;
      const numeric = typeof v === "number" || typeof f.current === "number";
      const el = LONG.has(name)
        ? h("textarea", { class: "input textarea", rows: 4, "aria-label": fieldLabel(c.collection, name) })
        : h("input", { class: "input", type: numeric ? "number" : "text", "aria-label": fieldLabel(c.collection, name) });
      el.value = v === null || v === undefined ? "" : String(v);
      return [name, el, numeric];
    });
    append(editBox, h("div", { class: "card edit-box" },
      inputs.map(([name, el]) => h("label", { class: "field" }, h("span", { class: "field-label" }, fieldLabel(c.collection, name)), el)),
      h("div", { class: "form-actions inline" },
        button(t("form.cancel"), () => clear(editBox), "btn btn-secondary"),
        button(t("conflicts.save_value"), async () => {
          const vals = Object.fromEntries(inputs.map(([n, el, num]) => [n, el.value.trim() === "" ? null : num ? Number(el.value) : el.value]));
          await resolve("value", inputs.length === 1 ? vals[inputs[0][0]] : vals);
        }, "btn btn-primary", { dataset: { testid: "conflict-save-value" } }))));
  }
  const editable = fields.length && fields.every(([n, f]) => ["string", "number"].includes(typeof (f.incoming ?? f.current ?? "")) && !(n === "id_number"));

  if (!resolved && canResolve) {
    const mineBtn = (key, fn, testid) => button(t(key), fn, "btn btn-primary", { dataset: { testid } });
    const theirsBtn = (key, fn, testid) => button(t(key), fn, "btn btn-secondary", { dataset: { testid } });
    if (c.kind === "field") {
      append(actions,
        mineIsIncoming ? mineBtn("conflicts.keep_mine", () => resolve("incoming"), "keep-mine") : mineBtn("conflicts.keep_incoming", () => resolve("incoming"), "keep-mine"),
        mineIsIncoming ? theirsBtn("conflicts.keep_theirs", keepCurrentSide, "keep-theirs") : theirsBtn("conflicts.keep_current", keepCurrentSide, "keep-theirs"),
        editable ? button(t("conflicts.edit"), openEdit, "btn btn-secondary", { dataset: { testid: "conflict-edit" } }) : null);
    } else if (c.kind === "delete") {
      append(actions,
        mineBtn("conflicts.delete_anyway", () => resolve("incoming"), "keep-mine"),
        theirsBtn("conflicts.keep_record", () => resolve("current"), "keep-theirs"));
    } else if (c.kind === "update_deleted") {
      append(actions,
        mineBtn("conflicts.restore_mine", () => resolve("incoming"), "keep-mine"),
        theirsBtn("conflicts.stay_deleted", () => resolve("current"), "keep-theirs"),
        editable ? button(t("conflicts.edit_restore"), openEdit, "btn btn-secondary", { dataset: { testid: "conflict-edit" } }) : null);
    } else if (c.kind === "transition") {
      if (isStaff) append(actions, mineBtn("conflicts.apply_move", () => resolve("incoming"), "keep-mine"));
      append(actions, theirsBtn("conflicts.withdraw_move", () => resolve("current"), "keep-theirs"));    } else if (c.kind === "delegation") {
      if (isStaff) append(actions, mineBtn("conflicts.count_work", () => resolve("incoming"), "keep-mine"));
      append(actions, theirsBtn(isStaff ? "conflicts.dont_count_work" : "conflicts.acknowledge", () => resolve("current"), "keep-theirs"));
    }
  }

  const link = linkFor(c);
  const resolvedBy = c.resolved_by ? userName(l, c.resolved_by, me) : null;
  return h("li", { class: ["card", "conflict", resolved ? "resolved" : null], dataset: { testid: "conflict-item" } },
    h("div", { class: "row-title" },
      h("strong", { class: "cap" }, t("coll." + c.collection)),
      link ? h("a", { href: link }, label || t("conflicts.open_record")) : h("span", null, label),
      c._pending ? pendingMark() : null),
    h("p", { class: "cf-why" }, t("conflicts.why_" + c.kind, { who: otherName })),
    rows,
    resolved
      ? h("p", { class: "cf-resolved" }, c.resolution ? t("conflicts.resolved_as", { how: t("resolution." + c.resolution) }) : t("conflicts.resolved"),
        resolvedBy ? ` · ${resolvedBy}` : "", c.resolved_at ? ` · ${relTime(c.resolved_at)}` : "")
      : !canResolve ? h("p", { class: "muted small" }, t("conflicts.not_yours", { who: userName(l, c.author_id, me) })) : null,
    actions.childNodes.length ? actions : null,
    editBox);
}

export default {
  title: () => t("conflicts.title"),
  tab: "conflicts",
  live: true,
  async render(ctx) {
    const [all, l] = await Promise.all([model.list("conflicts"), lookups()]);
    const list = all.filter((c) => KINDS.has(c.kind));
    const ts = (c) => Date.parse(c.created_at) || Date.now();
    const open = list.filter((c) => c.status === "open").sort((a, b) => ts(b) - ts(a));
    const done = list.filter((c) => c.status !== "open").sort((a, b) => ts(b) - ts(a)).slice(0, 20);
    const labels = new Map();
    await Promise.all([...open, ...done].map(async (c) => labels.set(c.id, await describe(c))));
    return h("div", { class: "view conflicts" },
      h("p", { class: "muted small hint-line" }, t("conflicts.hint")),
      open.length ? h("ul", { class: "conflict-list" }, open.map((c) => conflictCard(ctx, c, l, labels.get(c.id)))) : empty(t("conflicts.none")),
      done.length ? section(t("conflicts.resolved_title"), h("ul", { class: "conflict-list" }, done.map((c) => conflictCard(ctx, c, l, labels.get(c.id))))) : null);
  },
};
