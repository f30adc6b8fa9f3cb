// "明天去镇里" — the packing list for a trip to the town's service window: per matter, the
// materials the agent holds and must bring (originals first), what the window already has (results
// to collect), and what is still missing from the resident. Read from the phone, offline.

import { h } from "../dom.js";
import { t, getLang } from "../i18n.js";
import { lookups } from "../lookups.js";
import { empty, section } from "../ui.js";
import * as px from "../proxy.js";
import { myDelegated } from "./proxy_home.js";

function nameOf(cat, code, fallback) {
  const mat = ((cat && cat.materials) || []).find((x) => x.code === code);
  if (!mat) return fallback || code;
  return getLang() === "en" ? mat.name_en || mat.name_zh : mat.name_zh || mat.name_en;
}

export default {
  title: () => t("packing.title"),
  tab: "proxy",
  up: () => "proxy",
  live: true,
  async render(ctx) {
    const me = ctx.me;
    const [d, l] = await Promise.all([myDelegated(me), lookups()]);
    const cards = [];
    for (const m of d.matters.filter((x) => x.status !== "resolved")) {
      const ev = d.events(m.id);
      const cat = m.category ? l.categories.get(m.category) : null;
      const trails = px.custody(ev);
      const carry = [...trails.values()].filter((v) => v.place === "agent")
        .sort((a, b) => (a.form === "original" ? 0 : 1) - (b.form === "original" ? 0 : 1));
      // originals the window still holds come back with the result; copies stay there
      const atWindow = [...trails.values()].filter((v) => v.place === "window" && v.form === "original");
      const missing = ((cat && cat.materials) || []).filter((mat) => !px.itemState(trails, mat.code));
      const done = px.stepsDone(ev);
      const pickUp = done.has("submitted_to_window") && !done.has("result_obtained");
      if (!carry.length && !pickUp && !atWindow.length) continue;
      const res = m.resident_id ? d.resident.get(m.resident_id) : null;
      cards.push(h("div", { class: "card packing", dataset: { testid: "packing-matter" } },
        h("div", { class: "card-title" }, h("a", { href: `#/matter/${m.id}` }, h("strong", null, m.title || "")),
          res ? h("span", { class: "muted" }, " · " + res.name) : null),
        carry.length ? h("ul", { class: "packing-list" }, carry.map((v) => h("li", { dataset: { testid: "packing-item", code: v.code } },
          h("span", { class: "check-box", "aria-hidden": "true" }), nameOf(cat, v.code, v.name), " ",
          h("span", { class: v.form === "original" ? "tag tag-warm" : "tag" }, t("custody.form_" + v.form))))) : null,
        pickUp ? h("p", { class: "small", dataset: { testid: "packing-pickup" } }, t("packing.pick_up")) : null,
        atWindow.length ? h("p", { class: "muted small" }, t("packing.at_window", { items: atWindow.map((v) => nameOf(cat, v.code, v.name)).join("、") })) : null,
        missing.length ? h("p", { class: "banner banner-warn inline" }, t("packing.missing", { items: missing.map((x) => nameOf(cat, x.code)).join("、") })) : null,
        m.status === "waiting_materials" ? h("p", { class: "muted small" }, t("proxy.clock_paused")) : null));
    }
    return h("div", { class: "view packing-view" },
      h("p", { class: "muted small hint-line" }, t("packing.hint")),
      cards.length ? section(null, ...cards) : empty(t("packing.none")));
  },
};
