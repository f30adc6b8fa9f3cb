// The visit form (走访, W8): when, the 民情日记 entry, 三带走三留下, needs raised, photos, place.
// Saved to the outbox first; "已保存（待同步）" only after that transaction committed.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { field, group, input, textarea, toggle, empty } from "../ui.js";
import { photoField, gpsField } from "../fields.js";
import { takePrefill, settle } from "../prefill.js";
import { formActions } from "../forms.js";
import { toLocalInput, fromLocalInput, nowMs } from "../format.js";
import { icon } from "../icons.js";

// [field, group]; the labels are messages checklist.<field> and checklist.<field>_hint
export const CHECKLIST = [
  ["left_phone", "leave"], ["left_help_intention", "leave"], ["left_commitment", "leave"],
  ["took_situation", "take"], ["took_difficulties", "take"], ["took_suggestions", "take"],
];
const MAX_NEEDS = 20;

function needsEditor(initial) {
  const box = h("div", { class: "needs" });
  const rows = [];
  const addBtn = h("button", { type: "button", class: "btn btn-secondary btn-block" }, icon("plus"), t("visit.add_need"));
  function addRow(value = "", focus = false) {
    if (rows.length >= MAX_NEEDS) return;
    const inp = h("input", { type: "text", class: "input", maxlength: 500, placeholder: t("visit.need_placeholder"), "aria-label": t("visit.need_label", { n: rows.length + 1 }) });
    inp.value = value;
    const row = h("div", { class: "inline-add need-row" }, inp,
      h("button", { type: "button", class: "btn btn-icon", "aria-label": t("visit.remove_need"), onclick: () => {
        rows.splice(rows.indexOf(inp), 1);
        row.remove();
        addBtn.hidden = rows.length >= MAX_NEEDS;
      } }, icon("x")));
    rows.push(inp);
    box.insertBefore(row, addBtn);
    addBtn.hidden = rows.length >= MAX_NEEDS;
    if (focus) inp.focus();
  }
  addBtn.addEventListener("click", () => addRow("", true));
  append(box, addBtn);
  for (const v of initial || []) addRow(v);
  box.values = () => rows.map((r) => r.value.replace(/[\r\n]+/g, " ").trim()).filter(Boolean);
  return box;
}

export default {
  title: () => t("visit.title"),
  tab: "households",
  up: (ctx) => `household/${ctx.params.id}`,
  async render(ctx) {
    const hid = ctx.params.id;
    const hh = await model.view("households", hid);
    if (!hh || hh.deleted || hh._deleted) return empty(t("household.not_found"));
    const pre = takePrefill("visits");
    const start = pre ? pre.fields : {};

    const when = input({ name: "visited_at", type: "datetime-local", value: toLocalInput(start.visited_at || new Date(nowMs())) });
    const narrative = textarea({ name: "narrative", rows: 6, maxlength: 8000, placeholder: t("visit.narrative_placeholder") }, start.narrative || "");
    const checks = {};
    const checkGroup = (g) => h("div", { class: "toggles" }, CHECKLIST.filter(([, gg]) => gg === g).map(([k]) => {
      checks[k] = toggle(t("checklist." + k), !!(start.checklist && start.checklist[k]), null, { sub: t("checklist." + k + "_hint") });
      checks[k].dataset.testid = "check-" + k;
      return checks[k];
    }));
    const needs = needsEditor(start.needs);
    const photos = photoField(start.photos || []);
    const gps = gpsField(start.gps);
    const fWhen = field(t("field.visits.visited_at"), when, { required: true });

    async function save() {
      const at = fromLocalInput(when.value);
      fWhen.setError(at ? (Date.parse(at) > nowMs() + 5 * 60000 ? t("visit.future") : "") : t("form.required"));
      if (!at || Date.parse(at) > nowMs() + 5 * 60000) return null;
      if (photos.busy()) {
        ctx.toast(t("photo.wait"), { kind: "error" });
        return { to: null };
      }
      const checklist = Object.fromEntries(CHECKLIST.map(([k]) => [k, checks[k].checked]));
      const shas = await photos.store();
      const id = model.newId();
      const fields = { household_id: hid, visited_at: at, narrative: narrative.value.trim() ? narrative.value : null, checklist, needs: needs.values(), photos: shas };
      if (gps.value) fields.gps = gps.value;
      await model.save("visits", id, fields);
      await settle(pre);
      return `visit/${id}?saved=1`;
    }

    return h("form", { class: "view form visit-form", novalidate: true },
      h("p", { class: "form-context" }, t("visit.for_household", { name: hh.head_name || "", address: hh.address || "" })),
      pre ? h("p", { class: "banner banner-warn inline" }, t("form.prefilled_from_rejected")) : null,
      fWhen,
      field(t("field.visits.narrative"), narrative, { hint: t("visit.narrative_hint") }),
      group(t("visit.leave_three"), checkGroup("leave")),
      group(t("visit.take_three"), checkGroup("take")),
      h("div", { class: "field" }, h("div", { class: "field-label" }, t("field.visits.needs")), h("p", { class: "field-hint" }, t("visit.needs_hint")), needs),
      photos,
      gps,
      formActions(ctx, save, { cancelTo: `household/${hid}`, saveLabel: t("visit.save") }));
  },
};
