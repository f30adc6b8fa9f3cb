// One visit as recorded (visits are append-only: read, never edited). Right after saving it
// offers the next steps: turn a need raised into a matter, or go back to the dossier.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { absTime, relTime } from "../format.js";
import { lookups, userName } from "../lookups.js";
import { empty, section, facts, pendingMark, photoStrip } from "../ui.js";
import { icon } from "../icons.js";
import { CHECKLIST } from "./visit.js";

export default {
  title: () => t("visit_detail.title"),
  tab: "households",
  up: () => "households",
  live: true,
  async render(ctx) {
    const v = await model.view("visits", ctx.params.id);
    if (!v) return empty(t("visit_detail.not_found"));
    const [hh, l, matters] = await Promise.all([
      model.view("households", v.household_id), lookups(), model.listBy("matters", "visit_id", v.id),
    ]);
    const hid = v.household_id;
    const saved = ctx.query.saved === "1";
    const who = userName(l, v.worker_id || v.created_by || (v._pending ? ctx.me.id : null), ctx.me);

    const checklist = h("ul", { class: "checklist" }, CHECKLIST.map(([k]) => {
      const on = !!(v.checklist && v.checklist[k]);
      return h("li", { class: on ? "done" : "not-done" }, icon(on ? "check" : "x"), t("checklist." + k));
    }));
    const needs = (v.needs || []).map((n, i) => h("li", { class: "need" },
      h("span", null, n),
      h("a", { href: `#/household/${hid}/matter?visit=${v.id}&need=${i}`, class: "btn btn-small btn-secondary" }, t("visit_detail.need_to_matter"))));

    return h("div", { class: "view visit-detail" },
      saved ? h("div", { class: "banner banner-ok inline", role: "status", dataset: { testid: "saved-banner" } }, icon("check"), h("span", null, t("common.saved_pending"))) : null,
      h("div", { class: "card" },
        h("div", { class: "card-title" }, h("strong", null, absTime(v.visited_at)), v._pending ? pendingMark() : null),
        facts([
          [t("visit_detail.household"), hh ? h("a", { href: `#/household/${hid}` }, `${hh.head_name || ""} · ${hh.address || ""}`) : null],
          [t("visit_detail.worker"), who],
          [t("visit_detail.when"), relTime(v.visited_at)],
          [t("visit_detail.gps"), v.gps && typeof v.gps.lat === "number" ? t("gps.recorded", { lat: v.gps.lat.toFixed(5), lng: v.gps.lng.toFixed(5), acc: Math.round(v.gps.accuracy ?? 0) }) : null],
        ]),
        v.narrative ? h("p", { class: "narrative" }, v.narrative) : h("p", { class: "muted" }, t("visit_detail.no_narrative"))),
      section(t("visit.checklist_title"), checklist),
      section(t("field.visits.needs"), needs.length ? h("ul", { class: "needs-list" }, needs) : empty(t("visit_detail.no_needs"))),
      (v.photos || []).length ? section(t("photo.label"), photoStrip(v.photos)) : null,
      matters.length ? section(t("visit_detail.matters"), h("div", { class: "list" }, matters.map((m) =>
        h("a", { href: `#/matter/${m.id}`, class: "row" }, h("div", { class: "row-main" }, h("strong", null, m.title || ""), m._pending ? pendingMark() : null))))) : null,
      h("div", { class: "actions-grid" },
        h("a", { href: `#/household/${hid}/matter?visit=${v.id}`, class: "btn btn-accent btn-big" }, icon("flag"), t("household.action_matter")),
        h("a", { href: `#/household/${hid}`, class: "btn btn-secondary btn-big" }, t("visit_detail.back_to_household"))));
  },
};
