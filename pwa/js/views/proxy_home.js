// The proxy agent's home (代办员首页): the matters residents delegated to me, most urgent and
// nearest deadline first, each with what it waits for; and the way to the "going to town
// tomorrow" packing list. Everything here is read from the phone: it works with no signal.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { absDate } from "../format.js";
import { lookups, categoryName } from "../lookups.js";
import { empty, pendingMark, statusChip, urgencyChip, linkButton } from "../ui.js";
import * as px from "../proxy.js";

export async function myDelegated(me) {
  const [matters, events, residents, households] = await Promise.all([
    model.list("matters"), model.list("matter_events"), model.list("residents"), model.list("households")]);
  const mine = matters.filter((m) => px.isProxy(m) && m.assignee_id === me.id && px.ACTIVE(m.status));
  const evBy = new Map();
  for (const e of events) {
    if (!evBy.has(e.matter_id)) evBy.set(e.matter_id, []);
    evBy.get(e.matter_id).push(e);
  }
  return {
    matters: px.sortForAgent(mine),
    events: (id) => evBy.get(id) || [],
    resident: new Map(residents.map((r) => [r.id, r])),
    household: new Map(households.map((x) => [x.id, x])),
  };
}

function row(m, d, l, me) {
  const ev = d.events(m.id);
  const res = m.resident_id ? d.resident.get(m.resident_id) : null;
  const hh = d.household.get(m.household_id);
  const needDeleg = px.validDelegations(ev, me.id).length === 0;
  const held = px.heldDeadline(m);
  const overdue = px.isOverdueProxy(m);
  const out = px.unaccounted(ev).length;
  return h("a", { href: `#/matter/${m.id}`, class: ["row", "matter-row", overdue ? "row-overdue" : null], dataset: { testid: "proxy-row" } },
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, m.title || ""), m._pending ? pendingMark() : null),
      h("div", { class: "row-sub" }, [res ? res.name : hh ? hh.head_name : "", hh ? hh.address : ""].filter(Boolean).join(" · ")),
      h("div", { class: "row-sub muted small" }, categoryName(l, m.category)),
      h("div", { class: "row-meta" }, statusChip(m.status || "submitted"), urgencyChip(m.urgency),
        needDeleg ? h("span", { class: "tag tag-warm", dataset: { testid: "need-delegation-chip" } }, t("proxy.need_delegation")) : null,
        m.status === "waiting_materials" ? h("span", { class: "tag tag-warm" }, t("proxy.clock_paused")) : null,
        out ? h("span", { class: "tag" }, t("proxy.originals_held", { n: out })) : null,
        overdue ? h("span", { class: "overdue-chip" }, t("matters.overdue")) : null)),
    h("div", { class: "row-side small" },
      held ? h("span", { class: overdue ? "overdue" : null }, t("matters.deadline", { date: absDate(held) })) : h("span", { class: "muted" }, t("proxy.no_deadline"))));
}

export default {
  title: () => t("proxy.home_title"),
  tab: "proxy",
  live: true,
  async render(ctx) {
    const me = ctx.me;
    const [d, l] = await Promise.all([myDelegated(me), lookups()]);
    // delivered ones wait for the town to strike them off (销号): listed after the work still to do
    const open = d.matters.filter((m) => m.status !== "resolved");
    const delivered = d.matters.filter((m) => m.status === "resolved");
    return h("div", { class: "view proxy-home" },
      linkButton(t("packing.open"), "#/proxy/packing", "btn btn-primary btn-block", "list"),
      h("h2", { class: "list-head" }, t("proxy.mine"), h("span", { class: "count" }, String(open.length))),
      open.length ? h("div", { class: "list" }, open.map((m) => row(m, d, l, me))) : empty(t("proxy.none")),
      delivered.length ? h("details", { class: "group-details" },
        h("summary", { class: "list-head" }, t("proxy.delivered"), h("span", { class: "count" }, String(delivered.length))),
        h("div", { class: "list" }, delivered.map((m) => row(m, d, l, me)))) : null);
  },
};
