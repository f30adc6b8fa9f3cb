// A new matter (反映诉求, W5 派单): what the resident asks for, its category from the catalogue
// (or none: the town classifies, 一窗通办), urgency, and whether a proxy agent handles it (代办, W9).

import { h, clear, append } from "../dom.js";
import { t, getLang } from "../i18n.js";
import * as model from "../model.js";
import { lookups, ancestors } from "../lookups.js";
import { field, group, input, textarea, select, segmented, empty } from "../ui.js";
import { photoField } from "../fields.js";
import { takePrefill, settle } from "../prefill.js";
import { clean, formActions } from "../forms.js";

const CHANNELS = ["visit", "village_hotline", "walk_in", "snapshot", "meeting", "other"];

function catName(c) {
  return getLang() === "en" ? c.name_en : c.name_zh;
}

/** The proxy agents of the household's village (any agent in scope when none matches). */
export function agentsFor(l, hh) {
  const agents = l.userList.filter((u) => u.role === "proxy_agent" && u.active !== false);
  const above = new Set(ancestors(l, hh.grid_id).map((a) => a.id));
  const local = agents.filter((u) => (u.areas || []).some((a) => above.has(a)));
  return local.length ? local : agents;
}

export default {
  title: () => t("matter.title_new"),
  tab: "households",
  up: (ctx) => `household/${ctx.params.id}`,
  async render(ctx) {
    const hid = ctx.params.id;
    const hh = await model.view("households", hid);
    if (!hh || hh.deleted || hh._deleted) return empty(t("household.not_found"));
    const [l, residents] = await Promise.all([lookups(), model.listBy("residents", "household_id", hid)]);
    const visitId = ctx.query.visit || null;
    const visit = visitId ? await model.view("visits", visitId) : null;
    const pre = takePrefill("matters");
    const start = pre ? { ...pre.fields } : {};
    if (visit && ctx.query.need !== undefined && visit.needs && visit.needs[Number(ctx.query.need)]) {
      start.title = visit.needs[Number(ctx.query.need)];
    }

    const title = input({ name: "title", value: start.title || "", maxlength: 200, required: true, placeholder: t("matter.title_placeholder") });
    const desc = textarea({ name: "description", maxlength: 8000, placeholder: t("matter.description_placeholder") }, start.description || "");

    // two-level category picker
    const cats = l.categoryList.filter((c) => c.active !== false);
    const tops = cats.filter((c) => !c.parent_code);
    const startCat = start.category ? l.categories.get(start.category) : null;
    const startTop = startCat ? (startCat.parent_code || startCat.code) : "";
    const top = select([["", t("matter.uncategorised")], ...tops.map((c) => [c.code, catName(c)])], startTop, { name: "category_top" });
    const subBox = h("div");
    const materials = h("div", { class: "materials" });
    let sub = null;
    let modeTouched = !!start.handling_mode;
    function renderSub(value) {
      clear(subBox);
      sub = null;
      if (!top.value) { renderMaterials(); return; }
      const kids = cats.filter((c) => c.parent_code === top.value);
      if (!kids.length) { renderMaterials(); return; }
      sub = select([[top.value, t("matter.category_top_only")], ...kids.map((c) => [c.code, catName(c)])], value || top.value, { name: "category" });
      sub.addEventListener("change", renderMaterials);
      append(subBox, field(t("matter.category_sub"), sub));
      renderMaterials();
    }
    function category() {
      return sub ? sub.value : top.value || null;
    }
    function renderMaterials() {
      clear(materials);
      const c = category() ? l.categories.get(category()) : null;
      const list = c && Array.isArray(c.materials) ? c.materials : [];
      if (list.length) {
        append(materials, h("p", { class: "field-label" }, t("matter.materials")),
          h("ul", { class: "materials-list" }, list.map((m) => h("li", null, getLang() === "en" ? m.name_en || m.name_zh : m.name_zh || m.name_en))));
      }
      if (c && (c.code === "proxy" || c.parent_code === "proxy") && !modeTouched && mode !== "proxy") {
        modeSeg.querySelector("[data-value='proxy']").click();
        modeTouched = false;
      }
    }
    top.addEventListener("change", () => renderSub(null));

    let urgency = start.urgency || "normal";
    const urgSeg = segmented([["normal", t("urgency.normal"), "seg-normal"], ["urgent", t("urgency.urgent"), "seg-urgent"], ["critical", t("urgency.critical"), "seg-critical"]],
      urgency, (v) => { urgency = v; }, { name: t("field.matters.urgency") });

    const agents = agentsFor(l, hh);
    const agentSel = select([["", t("matter.choose_agent")], ...agents.map((u) => [u.id, u.display_name || u.username])],
      start.assignee_id || (agents.length === 1 ? agents[0].id : ""), { name: "assignee_id" });
    const fAgent = field(t("matter.agent"), agentSel, { required: true, hint: agents.length ? t("matter.agent_hint") : t("matter.no_agents") });
    let mode = start.handling_mode || "direct";
    const modeSeg = segmented([["direct", t("handling.direct")], ["proxy", t("handling.proxy")]], mode, (v) => {
      mode = v;
      modeTouched = true;
      fAgent.hidden = v !== "proxy";
    }, { name: t("field.matters.handling_mode") });
    fAgent.hidden = mode !== "proxy";
    // a proxy agent may raise a matter only as its own proxy handler (protocol: what a role may write)
    const agentSelf = ctx.me.role === "proxy_agent";
    if (agentSelf) mode = "proxy";

    const resSel = select([["", t("matter.no_resident")], ...residents.map((p) => [p.id, p.relation ? `${p.name}（${p.relation}）` : p.name])],
      start.resident_id || "", { name: "resident_id" });
    const channels = agentSelf ? ["proxy", ...CHANNELS] : CHANNELS;
    const channel = visitId ? null : select(channels.map((c) => [c, t("channel." + c)]), start.channel || channels[0], { name: "channel" });
    const photos = photoField(start.photos || []);
    const fTitle = field(t("field.matters.title"), title, { required: true });

    renderSub(startCat && startCat.parent_code ? startCat.code : null);

    async function save() {
      const v = { title: clean(title.value) };
      fTitle.setError(v.title ? "" : t("form.required"));
      const needAgent = mode === "proxy" && !agentSelf && !agentSel.value;
      fAgent.setError(needAgent ? t("matter.agent_required") : "");
      if (!v.title || needAgent) return null;
      if (photos.busy()) {
        ctx.toast(t("photo.wait"), { kind: "error" });
        return { to: null };
      }
      const shas = await photos.store();
      const id = model.newId();
      const fields = {
        household_id: hid,
        title: v.title,
        description: desc.value.trim() ? desc.value : null,
        category: category(),
        urgency,
        handling_mode: mode,
        channel: visitId ? "visit" : channel.value,
        resident_id: resSel.value || null,
        photos: shas,
      };
      if (mode === "proxy") fields.assignee_id = agentSelf ? ctx.me.id : agentSel.value;
      if (visitId) fields.visit_id = visitId;
      await model.save("matters", id, fields);
      await settle(pre);
      return `matter/${id}?saved=1`;
    }

    return h("form", { class: "view form matter-form", novalidate: true },
      h("p", { class: "form-context" }, t("matter.for_household", { name: hh.head_name || "", address: hh.address || "" }),
        visit ? h("span", { class: "muted" }, " · " + t("matter.from_visit")) : null),
      pre ? h("p", { class: "banner banner-warn inline" }, t("form.prefilled_from_rejected")) : null,
      fTitle,
      field(t("field.matters.description"), desc),
      field(t("matter.category_top"), top, { hint: t("matter.category_hint") }),
      subBox,
      materials,
      group(t("field.matters.urgency"), urgSeg),
      agentSelf ? null : group(t("field.matters.handling_mode"), modeSeg),
      agentSelf ? null : fAgent,
      field(t("field.matters.resident_id"), resSel),
      channel ? field(t("field.matters.channel"), channel) : null,
      photos,
      formActions(ctx, save, { cancelTo: `household/${hid}`, saveLabel: t("matter.save") }));
  },
};
