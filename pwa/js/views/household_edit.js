// Edit the household information card (住户信息卡), or register a new household in my grid.
// An update sends only the fields the worker changed; tags as {add, remove} (merged on the server).

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { lookups, ancestors } from "../lookups.js";
import { HOUSEHOLD_TAGS, tagLabel } from "../tags.js";
import { field, input, textarea, select, empty } from "../ui.js";
import { gpsField } from "../fields.js";
import { takePrefill, settle } from "../prefill.js";
import { tagEditor, tagDelta, PHONE_RE, clean, formActions, applyDelta } from "../forms.js";

const GRID_LEVELS = new Set(["grid", "patch", "group"]);

/** The grids a user may register households in: their own areas, or grids below them. */
export function myGrids(l, me) {
  const mine = new Set(me.areas || []);
  return [...l.areas.values()].filter((a) => GRID_LEVELS.has(a.level) && ancestors(l, a.id).some((x) => mine.has(x.id)))
    .sort((a, b) => (a.sort ?? 0) - (b.sort ?? 0) || String(a.name).localeCompare(String(b.name), "zh-CN"));
}

export default {
  title: (ctx) => (ctx.params.id ? t("household_edit.title") : t("household_edit.title_new")),
  tab: "households",
  up: (ctx) => (ctx.params.id ? `household/${ctx.params.id}` : "households"),
  async render(ctx) {
    const id = ctx.params.id || null;
    const current = id ? await model.view("households", id) : null;
    if (id && (!current || current.deleted || current._deleted)) return empty(t("household.not_found"));
    const l = await lookups();
    const pre = takePrefill("households", id);
    const start = { ...(current || {}) };
    if (pre) {
      for (const [k, v] of Object.entries(pre.fields)) start[k] = k === "tags" ? applyDelta(start.tags, v) : v;
    }

    const grids = myGrids(l, ctx.me);
    const gridSel = !id && grids.length > 1
      ? select([["", t("household_edit.choose_grid")], ...grids.map((g) => [g.id, g.name])], start.grid_id || "")
      : null;
    const gridId = () => (id ? current.grid_id : gridSel ? gridSel.value : grids[0] ? grids[0].id : (ctx.me.areas || [])[0]);

    const head = input({ name: "head_name", value: start.head_name || "", maxlength: 50, required: true });
    const address = input({ name: "address", value: start.address || "", maxlength: 200, required: true });
    const phone = input({ name: "phone", type: "tel", inputmode: "tel", value: start.phone || "", maxlength: 30 });
    const members = input({ name: "members_count", type: "number", inputmode: "numeric", min: 0, max: 99,
      value: start.members_count ?? "" });
    const notes = textarea({ name: "notes", maxlength: 4000 }, start.notes || "");
    const tags = tagEditor(HOUSEHOLD_TAGS, start.tags || [], tagLabel);
    const gps = gpsField(start.location, { label: t("field.households.location") });

    const fHead = field(t("field.households.head_name"), head, { required: true });
    const fAddr = field(t("field.households.address"), address, { required: true, hint: t("household_edit.address_hint") });
    const fPhone = field(t("field.households.phone"), phone);
    const fMembers = field(t("field.households.members_count"), members);
    const fGrid = gridSel ? field(t("household.grid"), gridSel, { required: true }) : null;

    async function save() {
      let ok = true;
      const v = {
        head_name: clean(head.value), address: clean(address.value), phone: clean(phone.value),
        members_count: members.value === "" ? null : Number(members.value),
        notes: notes.value.trim() ? notes.value : null,
      };
      fHead.setError(v.head_name ? "" : t("form.required"));
      fAddr.setError(v.address ? "" : t("form.required"));
      fPhone.setError(!v.phone || PHONE_RE.test(v.phone) ? "" : t("form.bad_phone"));
      fMembers.setError(v.members_count === null || (Number.isInteger(v.members_count) && v.members_count >= 0 && v.members_count <= 99) ? "" : t("form.bad_count"));
      if (fGrid) fGrid.setError(gridSel.value ? "" : t("form.required"));
      ok = v.head_name && v.address && (!v.phone || PHONE_RE.test(v.phone)) && !fMembers.querySelector("[aria-invalid]") && (!fGrid || gridSel.value);
      if (!ok) return null;
      if (!id) {
        const newId = model.newId();
        const fields = { grid_id: gridId(), ...v, tags: { add: [...tags.selected], remove: [] } };
        if (gps.value) fields.location = gps.value;
        await model.save("households", newId, fields);
        await settle(pre);
        return `household/${newId}`;
      }
      const fields = {};
      for (const [k, val] of Object.entries(v)) if ((current[k] ?? null) !== val) fields[k] = val;
      const delta = tagDelta(current.tags, tags.selected);
      if (delta) fields.tags = delta;
      const loc = gps.value || null;
      if (JSON.stringify(current.location || null) !== JSON.stringify(loc)) fields.location = loc;
      if (!Object.keys(fields).length) return { nothing: true, to: `household/${id}` };
      await model.save("households", id, fields);
      await settle(pre);
      return `household/${id}`;
    }

    return h("form", { class: "view form", novalidate: true },
      pre ? h("p", { class: "banner banner-warn inline" }, t("form.prefilled_from_rejected")) : null,
      fGrid,
      fHead, fAddr, fPhone, fMembers,
      h("div", { class: "field" }, h("div", { class: "field-label" }, t("field.households.tags")), tags),
      field(t("field.households.notes"), notes),
      gps,
      formActions(ctx, save, { cancelTo: id ? `household/${id}` : "households" }));
  },
};
