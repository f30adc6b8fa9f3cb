// One matter: its fields, what happened to it (matter_events, newest first), the status moves
// this user may make (workflow.js), a progress note, and the resident's rating (对象评价).

import { h, clear, append } from "../dom.js";
import { t, getLang } from "../i18n.js";
import * as model from "../model.js";
import { absTime, absDate, relTime } from "../format.js";
import { lookups, userName, categoryName } from "../lookups.js";
import { empty, section, facts, pendingMark, statusChip, urgencyChip, photoStrip, textarea, button } from "../ui.js";
import { nextStatuses } from "../workflow.js";
import { isOverdue } from "./matters.js";
import { icon } from "../icons.js";
import { proxyPanel, signatureView } from "./proxy_panel.js";
import { SATISFACTION, isProxy } from "../proxy.js";

function satisfactionOf(d) {
  if (!d) return null;
  if (d.satisfaction) return d.satisfaction;
  if (typeof d.rating === "number") return d.rating >= 4 ? "satisfied" : d.rating === 3 ? "basically_satisfied" : "dissatisfied";
  return null;
}

function eventItem(e, l, me, residents, materials = []) {
  const who = userName(l, e.actor_id || e.created_by || (e._pending ? me.id : null), me);
  const when = e.at || e.created_at;
  let head;
  if (e.kind === "status") {
    head = h("span", { class: "ev-status" }, e.from ? statusChip(e.from) : null, e.from ? " → " : null, statusChip(e.to));
  } else {
    head = h("strong", null, t("event." + e.kind));
  }
  const extra = [];
  if (e.kind === "status" && e.applied === false) extra.push(h("span", { class: "not-applied", title: t("event.not_applied_hint") }, t("event.not_applied")));
  if (e.kind === "step" && e.step) head = h("strong", null, t("step." + e.step));
  if (e.kind === "step" && e.to && e.applied !== false) extra.push(statusChip(e.to));
  if (e.kind === "step" && e.applied === false) extra.push(h("span", { class: "not-applied", title: t("event.not_applied_hint") }, t("event.not_applied")));
  if (e.for_user_id && e.kind !== "delegation") extra.push(h("span", { class: "tag" }, t("event.for_user", { name: userName(l, e.for_user_id, me) })));
  if (e.for_resident_id) {
    const r = residents.find((x) => x.id === e.for_resident_id);
    extra.push(h("span", { class: "tag" }, t("event.for_resident", { name: r ? r.name : t("common.unknown_user") })));
  }
  const sat = e.kind === "feedback" ? satisfactionOf(e.data) : null;
  if (sat) extra.push(h("span", { class: sat === "dissatisfied" ? "tag tag-warm" : "tag tag-ok", dataset: { testid: "feedback-chip" } }, t("satisfaction." + sat)));
  if (e.kind === "custody" && e.data && e.data.action) extra.push(h("span", { class: "tag" }, t("custody." + e.data.action)));
  if (e.kind === "delegation" && e.data && e.data.until) extra.push(h("span", { class: "tag" }, t("deleg.until_short", { date: e.data.until, agent: userName(l, e.for_user_id, me) })));
  const d = e.data || {};
  const signed = (e.kind === "delegation" || e.step === "delivered") ? [d.signature, d.photo].filter(Boolean) : [];
  const others = (e.attachments || []).filter((x) => !signed.includes(x));
  const items = e.kind === "custody" && Array.isArray(d.items) ? d.items : [];
  return h("li", { class: ["event", e.applied === false ? "ev-void" : null], dataset: { testid: "matter-event", kind: e.kind, step: e.step || "" } },
    h("div", { class: "row-title" }, head, e._pending ? pendingMark() : null, ...extra),
    e.note ? h("p", { class: "ev-note" }, e.note) : null,
    items.length ? h("p", { class: "small" }, items.map((it) => {
      const mat = materials.find((x) => x.code === it.code);
      const name = mat ? (getLang() === "en" ? mat.name_en || mat.name_zh : mat.name_zh || mat.name_en) : it.name || it.code;
      return `${name}（${t("custody.form_" + it.form)}）`;
    }).join("、")) : null,
    d.comment ? h("p", { class: "ev-note" }, d.comment) : null,
    signed.map((sha) => signatureView(sha, { kind: sha === d.photo ? "photo" : "sig" })),
    others.length ? photoStrip(others) : null,
    h("div", { class: "muted small" }, `${who} · ${when ? absTime(when) + "（" + relTime(when) + "）" : t("common.pending")}`));
}

export default {
  title: () => t("matter_detail.title"),
  tab: "matters",
  up: () => "matters",
  live: true,
  async render(ctx) {
    const id = ctx.params.id;
    const m = await model.view("matters", id);
    if (!m || m.deleted || m._deleted) return empty(t("matter_detail.not_found"));
    const me = ctx.me;
    const [l, events, hh, resident, residents] = await Promise.all([
      lookups(), model.listBy("matter_events", "matter_id", id),
      model.view("households", m.household_id), m.resident_id ? model.view("residents", m.resident_id) : null,
      model.listBy("residents", "household_id", m.household_id),
    ]);
    const ts = (e) => Date.parse(e.at || e.created_at) || Number.MAX_SAFE_INTEGER; // pending ones on top
    events.sort((a, b) => ts(b) - ts(a) || (b.version || 0) - (a.version || 0));
    const status = m.status || "submitted";
    const overdue = isOverdue(m);

    // --- status moves ---
    // A proxy agent moves a proxy matter by its steps (with the resident's delegation), not bare moves.
    const agentOnProxy = isProxy(m) && me.role === "proxy_agent";
    const moves = agentOnProxy ? [] : nextStatuses(status, me.role, m.assignee_id === me.id);
    const moveBox = h("div", { class: "move-box" });
    function openMove(to) {
      clear(moveBox);
      const note = textarea({ rows: 3, maxlength: 4000, placeholder: t("matter_detail.move_note_placeholder"), "aria-label": t("matter_detail.move_note") });
      append(moveBox, h("div", { class: "card move-form" },
        h("p", null, t("matter_detail.move_confirm", { to: t("status." + to) })),
        note,
        h("div", { class: "form-actions inline" },
          button(t("form.cancel"), () => clear(moveBox), "btn btn-secondary"),
          button(t("matter_detail.move_do", { to: t("move." + to) }), async () => {
            await model.moveMatter(id, to, note.value.trim() || "");
            note.defaultValue = note.value;
            ctx.toast(t("common.saved_pending"));
          }, "btn btn-primary", { dataset: { testid: "move-confirm" } }))));
      note.focus();
    }
    const moveButtons = moves.length ? h("div", { class: "actions-grid" }, moves.map((to) =>
      button(t("move." + to), () => openMove(to), "btn btn-primary", { dataset: { testid: "move-" + to } }))) : null;

    // --- progress note ---
    const noteText = textarea({ rows: 3, maxlength: 4000, placeholder: t("matter_detail.note_placeholder"), "aria-label": t("matter_detail.note_label") });
    const noteForm = h("div", { class: "note-form" }, noteText,
      button(t("matter_detail.note_add"), async () => {
        const v = noteText.value.trim();
        if (!v) { noteText.focus(); return; }
        await model.addEvent(id, "note", { note: noteText.value });
        noteText.value = "";
        noteText.defaultValue = "";
        ctx.toast(t("common.saved_pending"));
      }, "btn btn-secondary btn-block", { dataset: { testid: "note-add" } }));

    // --- the resident's rating, on a follow-up visit or call ---
    let feedback = null;
    if (status === "resolved" || status === "closed") {
      // 回访/对象评价: 满意 / 基本满意 / 不满意 and what the resident said; 不满意 reopens it for the town
      let satisfaction = null;
      const fbNote = textarea({ rows: 2, maxlength: 2000, placeholder: t("matter_detail.feedback_placeholder"), "aria-label": t("matter_detail.feedback") });
      const ratingRow = h("div", { class: "segmented" }, SATISFACTION.map((v) => h("button", {
        type: "button", class: "seg", "aria-pressed": "false", dataset: { testid: "satisfaction-" + v },
        onclick: (e) => { satisfaction = v; for (const b of ratingRow.children) b.setAttribute("aria-pressed", String(b === e.currentTarget)); },
      }, t("satisfaction." + v))));
      feedback = section(t("matter_detail.feedback"), ratingRow, fbNote,
        button(t("matter_detail.feedback_save"), async () => {
          if (!satisfaction) { ctx.toast(t("matter_detail.feedback_choose"), { kind: "error" }); return; }
          const data = { satisfaction };
          if (fbNote.value.trim()) data.comment = fbNote.value.trim();
          await model.addEvent(id, "feedback", { for_resident_id: m.resident_id || null, data });
          fbNote.defaultValue = fbNote.value;
          ctx.toast(t("common.saved_pending"));
        }, "btn btn-secondary btn-block", { dataset: { testid: "feedback-save" } }));
    }
    const proxyParts = isProxy(m) ? await proxyPanel(ctx, m, events, l, residents) : [];

    const saved = ctx.query.saved === "1";
    return h("div", { class: "view matter-detail" },
      saved ? h("div", { class: "banner banner-ok inline", role: "status", dataset: { testid: "saved-banner" } }, icon("check"), h("span", null, t("common.saved_pending"))) : null,
      h("div", { class: "card" },
        h("div", { class: "card-title" }, h("strong", { class: "big" }, m.title || ""), m._pending ? pendingMark() : null),
        h("div", { class: "row-meta" }, statusChip(status), urgencyChip(m.urgency),
          overdue ? h("span", { class: "overdue-chip" }, t("matters.overdue")) : null,
          m.supervised ? h("span", { class: "supervised-chip" }, t("matters.supervised")) : null),
        m.supervised && m.supervision_note ? h("p", { class: "banner banner-warn inline" }, m.supervision_note) : null,
        facts([
          [t("field.matters.household_id"), hh ? h("a", { href: `#/household/${hh.id}` }, `${hh.head_name || ""} · ${hh.address || ""}`) : null],
          [t("field.matters.resident_id"), resident ? resident.name : null],
          [t("field.matters.category"), categoryName(l, m.category)],
          [t("field.matters.handling_mode"), m.handling_mode ? t("handling." + m.handling_mode) : null],
          [t("field.matters.assignee_id"), m.assignee_id ? userName(l, m.assignee_id, me) : t("matter_detail.not_assigned")],
          [t("field.matters.channel"), m.channel ? t("channel." + m.channel) : null],
          [t("field.matters.raised_at"), m.raised_at ? absTime(m.raised_at) : null],
          [t("field.matters.deadline"), m.deadline ? absDate(m.deadline) : null],
          [t("field.matters.level"), m.level ? t("level." + m.level) : null],
          [t("matter_detail.raised_by"), m.created_by ? userName(l, m.created_by, me) : null],
        ]),
        m.description ? h("p", { class: "narrative" }, m.description) : null,
        photoStrip(m.photos)),
      ...proxyParts,
      moveButtons ? section(t("matter_detail.moves"), moveButtons, moveBox) : null,
      section(t("matter_detail.add_note"), noteForm),
      feedback,
      section(t("matter_detail.events", { n: events.length }),
        events.length ? h("ul", { class: "events" }, events.map((e) => eventItem(e, l, me, residents, (l.categories.get(m.category) || {}).materials || []))) : empty(t("matter_detail.no_events"))));
  },
};
