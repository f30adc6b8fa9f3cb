// The household dossier (服务百姓档案): the information card, the people, and the story of
// visits and matters, newest first; the day's actions one thumb away.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { absTime, relTime, nowMs } from "../format.js";
import { lookups, userName, areaName } from "../lookups.js";
import { PRIORITY, tagLabel } from "../tags.js";
import { pendingMark, tagList, empty, section, facts, statusChip, urgencyChip } from "../ui.js";
import { icon } from "../icons.js";
import { CHECKLIST } from "./visit.js";

export function telLink(phone) {
  if (!phone) return null;
  const dial = String(phone).replace(/[^0-9+]/g, "");
  return h("a", { href: "tel:" + dial, class: "tel" }, icon("phone"), String(phone));
}

export function residentLine(p, year) {
  const bits = [];
  if (p.gender && p.gender !== "unknown") bits.push(t("gender." + p.gender));
  if (p.birth_year) bits.push(t("resident.age", { n: year - p.birth_year }));
  if (p.relation) bits.push(p.relation);
  return bits.join(" · ");
}

function residentRow(p, year) {
  return h("a", { href: `#/resident/${p.id}/edit`, class: "row resident-row", dataset: { testid: "resident-row" } },
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, p.name || ""), p._pending ? pendingMark() : null,
        p.residence && p.residence !== "resident" ? h("span", { class: "tag tag-muted" }, t("residence." + p.residence)) : null),
      h("div", { class: "row-sub" }, residentLine(p, year)),
      p.phone ? h("div", { class: "row-sub" }, String(p.phone)) : null,
      p.id_number ? h("div", { class: "row-sub mono" }, t("resident.id_short", { id: p.id_number })) : null,
      tagList(p.tags, tagLabel, { priority: PRIORITY })),
    h("div", { class: "row-side" }, icon("edit")));
}

function checklistCount(c) {
  if (!c) return 0;
  return CHECKLIST.filter(([k]) => c[k]).length;
}

function visitItem(v, l, me) {
  const n = checklistCount(v.checklist);
  return h("a", { href: `#/visit/${v.id}`, class: "row tl-item tl-visit", dataset: { testid: "timeline-visit" } },
    h("div", { class: "tl-mark" }, icon("walk")),
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, t("timeline.visit")), v._pending ? pendingMark() : null,
        h("span", { class: "muted small" }, absTime(v.visited_at))),
      h("div", { class: "row-sub" }, t("timeline.visit_by", { who: userName(l, v.worker_id || v.created_by || (v._pending ? me.id : null), me), age: relTime(v.visited_at) })),
      v.narrative ? h("p", { class: "clamp" }, v.narrative) : null,
      h("div", { class: "row-sub small" },
        t("timeline.checklist", { n, total: CHECKLIST.length }),
        (v.needs || []).length ? " · " + t("timeline.needs", { n: v.needs.length }) : "",
        (v.photos || []).length ? " · " + t("timeline.photos", { n: v.photos.length }) : "")));
}

function matterItem(m) {
  const at = m.raised_at || m.created_at;
  return h("a", { href: `#/matter/${m.id}`, class: "row tl-item tl-matter", dataset: { testid: "timeline-matter" } },
    h("div", { class: "tl-mark" }, icon("flag")),
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, t("timeline.matter")), m._pending ? pendingMark() : null,
        h("span", { class: "muted small" }, at ? absTime(at) : "")),
      h("div", { class: "row-title" }, h("span", null, m.title || ""), statusChip(m.status || "submitted"), urgencyChip(m.urgency))));
}

export default {
  title: () => t("household.title"),
  tab: "households",
  up: () => "households",
  live: true,
  async render(ctx) {
    const id = ctx.params.id;
    const hh = await model.view("households", id);
    if (!hh || hh.deleted || hh._deleted) {
      return empty(t("household.not_found"), h("a", { href: "#/households", class: "btn btn-secondary" }, t("household.back_to_list")));
    }
    ctx.setTitle(t("household.title_named", { name: hh.head_name || "" }));
    const [residents, visits, matters, l] = await Promise.all([
      model.listBy("residents", "household_id", id),
      model.listBy("visits", "household_id", id),
      model.listBy("matters", "household_id", id),
      lookups(),
    ]);
    const me = ctx.me;
    const year = new Date(nowMs()).getFullYear();
    const ts = (x) => Date.parse(x) || 0;
    visits.sort((a, b) => ts(b.visited_at) - ts(a.visited_at));
    const lastVisit = visits[0];
    const timeline = [
      ...visits.map((v) => ({ at: ts(v.visited_at), node: () => visitItem(v, l, me) })),
      ...matters.map((m) => ({ at: ts(m.raised_at || m.created_at) || nowMs(), node: () => matterItem(m) })),
    ].sort((a, b) => b.at - a.at);
    residents.sort((a, b) => (a.relation === "户主" ? -1 : 0) - (b.relation === "户主" ? -1 : 0) || (a.birth_year || 0) - (b.birth_year || 0));

    const loc = hh.location && typeof hh.location.lat === "number" ? `${hh.location.lat.toFixed(5)}, ${hh.location.lng.toFixed(5)}` : null;
    const cardEl = h("div", { class: "card hh-card" },
      h("div", { class: "card-title" }, h("strong", { class: "big" }, hh.head_name || ""), hh._pending ? pendingMark() : null),
      h("p", { class: "hh-address" }, hh.address || ""),
      tagList(hh.tags, tagLabel, { priority: PRIORITY }),
      facts([
        [t("field.households.phone"), telLink(hh.phone)],
        [t("field.households.members_count"), hh.members_count !== null && hh.members_count !== undefined ? t("household.members", { n: hh.members_count }) : null],
        [t("household.grid"), areaName(l, hh.grid_id)],
        [t("household.last_visit"), lastVisit ? `${relTime(lastVisit.visited_at)}（${absTime(lastVisit.visited_at)}）` : t("households.never_visited")],
        [t("field.households.location"), loc],
      ]),
      hh.notes ? h("p", { class: "notes" }, hh.notes) : null);

    const actions = h("div", { class: "actions-grid" },
      // visits are the grid's record of its own work: a proxy agent's visit is refused by the server
      me.role === "proxy_agent" ? null : h("a", { href: `#/household/${id}/visit`, class: "btn btn-primary btn-big action-visit", dataset: { testid: "action-visit" } }, icon("walk"), t("household.action_visit")),
      h("a", { href: `#/household/${id}/matter`, class: "btn btn-accent btn-big", dataset: { testid: "action-matter" } }, icon("flag"), t("household.action_matter")),
      h("a", { href: `#/household/${id}/edit`, class: "btn btn-secondary" }, icon("edit"), t("household.action_edit")),
      h("a", { href: `#/household/${id}/resident/new`, class: "btn btn-secondary" }, icon("user"), t("household.action_add_resident")));

    return h("div", { class: "view household" },
      cardEl,
      actions,
      section(t("household.residents", { n: residents.length }),
        residents.length ? h("div", { class: "list" }, residents.map((p) => residentRow(p, year))) : empty(t("household.no_residents"))),
      section(t("household.timeline"),
        timeline.length ? h("div", { class: "list timeline" }, timeline.map((x) => x.node())) : empty(t("household.no_timeline"))));
  },
};
