// Add a resident to a household, or edit one. The ID number arrives masked for grid workers:
// it is never sent back; only a newly typed full number is.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { RESIDENT_TAGS, tagLabel } from "../tags.js";
import { field, group, input, textarea, segmented, empty, confirmButton } from "../ui.js";
import { takePrefill, settle } from "../prefill.js";
import { tagEditor, tagDelta, PHONE_RE, ID_NUMBER_RE, clean, formActions, applyDelta } from "../forms.js";
import { nowMs } from "../format.js";

const RELATIONS = ["户主", "配偶", "儿子", "女儿", "儿媳", "女婿", "孙子", "孙女", "父亲", "母亲", "兄弟姐妹", "其他"];

export default {
  title: (ctx) => (ctx.path.startsWith("resident/") ? t("resident_edit.title") : t("resident_edit.title_new")),
  tab: "households",
  up: (ctx) => (ctx.path.startsWith("resident/") ? "households" : `household/${ctx.params.id}`),
  async render(ctx) {
    const editing = ctx.path.startsWith("resident/");
    const id = editing ? ctx.params.id : null;
    const current = editing ? await model.view("residents", id) : null;
    if (editing && (!current || current.deleted || current._deleted)) return empty(t("resident_edit.not_found"));
    const householdId = editing ? current.household_id : ctx.params.id;
    const hh = await model.view("households", householdId);
    const pre = takePrefill("residents", id);
    const start = { ...(current || {}) };
    if (pre) for (const [k, v] of Object.entries(pre.fields)) start[k] = k === "tags" ? applyDelta(start.tags, v) : v;
    const year = new Date(nowMs()).getFullYear();

    const name = input({ name: "name", value: start.name || "", maxlength: 50, required: true });
    let gender = start.gender || null;
    const genderSeg = segmented([["male", t("gender.male")], ["female", t("gender.female")], ["unknown", t("gender.unknown")]],
      gender, (v) => { gender = v; }, { name: t("field.residents.gender") });
    const birth = input({ name: "birth_year", type: "number", inputmode: "numeric", min: 1880, max: year, value: start.birth_year ?? "" });
    // a masked number from the server is shown as a hint, never put in the box (it must not go back)
    const masked = editing && current.id_number && current.id_number.includes("*");
    const idNum = input({ name: "id_number", maxlength: 18, autocapitalize: "characters", inputmode: "text",
      value: masked ? "" : (start.id_number || ""), placeholder: masked ? current.id_number : "" });
    const phone = input({ name: "phone", type: "tel", inputmode: "tel", value: start.phone || "", maxlength: 30 });
    const relList = h("datalist", { id: "relations" }, RELATIONS.map((r) => h("option", { value: r })));
    const relation = input({ name: "relation", value: start.relation || "", maxlength: 20, list: "relations" });
    let residence = start.residence || "resident";
    const resSeg = segmented(["resident", "away", "moved_out", "deceased"].map((v) => [v, t("residence." + v)]),
      residence, (v) => { residence = v; }, { name: t("field.residents.residence") });
    const tags = tagEditor(RESIDENT_TAGS, start.tags || [], tagLabel);
    const notes = textarea({ name: "notes", maxlength: 4000 }, start.notes || "");

    const fName = field(t("field.residents.name"), name, { required: true });
    const fBirth = field(t("field.residents.birth_year"), birth);
    const fId = field(t("field.residents.id_number"), idNum, { hint: masked ? t("resident_edit.id_masked_hint") : t("resident_edit.id_hint") });
    const fPhone = field(t("field.residents.phone"), phone);

    async function save() {
      const v = {
        name: clean(name.value), gender, birth_year: birth.value === "" ? null : Number(birth.value),
        phone: clean(phone.value), relation: clean(relation.value), residence,
        notes: notes.value.trim() ? notes.value : null,
      };
      const idv = clean(idNum.value);
      fName.setError(v.name ? "" : t("form.required"));
      const birthOk = v.birth_year === null || (Number.isInteger(v.birth_year) && v.birth_year >= 1880 && v.birth_year <= year);
      fBirth.setError(birthOk ? "" : t("form.bad_year", { max: year }));
      const idOk = !idv || ID_NUMBER_RE.test(idv);
      fId.setError(idOk ? "" : t("form.bad_id_number"));
      const phoneOk = !v.phone || PHONE_RE.test(v.phone);
      fPhone.setError(phoneOk ? "" : t("form.bad_phone"));
      if (!v.name || !birthOk || !idOk || !phoneOk) return null;
      if (idv) v.id_number = idv.toUpperCase();
      if (!editing) {
        const rid = model.newId();
        await model.save("residents", rid, { household_id: householdId, ...v, tags: { add: [...tags.selected], remove: [] } });
        await settle(pre);
        return `household/${householdId}`;
      }
      const fields = {};
      for (const [k, val] of Object.entries(v)) if ((current[k] ?? null) !== val) fields[k] = val;
      const delta = tagDelta(current.tags, tags.selected);
      if (delta) fields.tags = delta;
      if (!Object.keys(fields).length) return { nothing: true, to: `household/${householdId}` };
      await model.save("residents", id, fields);
      await settle(pre);
      return `household/${householdId}`;
    }

    const del = editing ? h("div", { class: "danger-zone" },
      confirmButton(t("resident_edit.delete"), t("resident_edit.delete_confirm"), async () => {
        await model.remove("residents", id);
        ctx.toast(t("common.saved_pending"));
        ctx.navigate(`household/${householdId}`, { replace: true });
      }),
      h("p", { class: "field-hint" }, t("resident_edit.delete_hint"))) : null;

    return h("form", { class: "view form", novalidate: true },
      hh ? h("p", { class: "form-context" }, t("resident_edit.of_household", { name: hh.head_name || "", address: hh.address || "" })) : null,
      pre ? h("p", { class: "banner banner-warn inline" }, t("form.prefilled_from_rejected")) : null,
      fName,
      group(t("field.residents.gender"), genderSeg),
      fBirth,
      field(t("field.residents.relation"), relation), relList,
      fPhone,
      fId,
      group(t("field.residents.residence"), resSeg),
      h("div", { class: "field" }, h("div", { class: "field-label" }, t("field.residents.tags")), tags),
      field(t("field.residents.notes"), notes),
      del,
      formActions(ctx, save, { cancelTo: `household/${householdId}` }));
  },
};
