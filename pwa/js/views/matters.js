// My matters: the ones I raised and the ones handed to me, grouped by status, overdue marked.
// "Whole grid" shows every matter of my grid(s) as well.

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { absDate, relTime, today } from "../format.js";
import { pendingMark, statusChip, urgencyChip, empty } from "../ui.js";
import { DONE } from "../workflow.js";

// The order a worker reads them in: what needs doing first, finished ones last.
const ORDER = ["waiting_materials", "in_progress", "assigned", "reopened", "escalated", "submitted", "accepted",
  "resolved", "closed", "not_accepted", "merged_duplicate"];
const COLLAPSED = new Set(["closed", "not_accepted", "merged_duplicate"]);

const state = { scope: "mine" };

// The deadline a matter is held to moves on by the days it waited for materials, and a matter
// waiting for materials is never overdue: its clock stands still (docs/proxy.md).
export function isOverdue(m, day = today()) {
  const d = m.effective_deadline || m.deadline;
  return !!d && d < day && !DONE.has(m.status) && m.status !== "waiting_materials";
}

function matterRow(m, hhs, me) {
  const hh = hhs.get(m.household_id);
  const overdue = isOverdue(m);
  const mineTag = m.assignee_id === me.id ? t("matters.assigned_to_me") : null;
  return h("a", { href: `#/matter/${m.id}`, class: ["row", "matter-row", overdue ? "row-overdue" : null], dataset: { testid: "matter-row" } },
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, m.title || ""), m._pending ? pendingMark() : null),
      h("div", { class: "row-sub" }, hh ? `${hh.head_name || ""} · ${hh.address || ""}` : ""),
      h("div", { class: "row-meta" },
        statusChip(m.status || "submitted"),
        urgencyChip(m.urgency),
        overdue ? h("span", { class: "overdue-chip" }, t("matters.overdue")) : null,
        m.supervised ? h("span", { class: "supervised-chip" }, t("matters.supervised")) : null,
        mineTag ? h("span", { class: "tag" }, mineTag) : null)),
    h("div", { class: "row-side small" },
      m.deadline ? h("span", { class: overdue ? "overdue" : null }, t("matters.deadline", { date: absDate(m.deadline) })) : null,
      h("span", { class: "muted" }, relTime(m.raised_at || m.created_at))));
}

export default {
  title: () => t("matters.title"),
  tab: "matters",
  live: true,
  async render(ctx) {
    const me = ctx.me;
    const [all, hhList] = await Promise.all([model.list("matters"), model.list("households")]);
    const hhs = new Map(hhList.map((x) => [x.id, x]));
    const isMine = (m) => m.created_by === me.id || m.assignee_id === me.id || (m._pending && !m.created_by);
    const box = h("div");

    function render() {
      clear(box);
      const list = state.scope === "mine" ? all.filter(isMine) : all;
      if (!list.length) {
        append(box, empty(state.scope === "mine" ? t("matters.none_mine") : t("matters.none")));
        return;
      }
      const ts = (m) => Date.parse(m.raised_at || m.created_at) || Date.now();
      const overdue = list.filter((m) => isOverdue(m));
      if (overdue.length) append(box, h("p", { class: "banner banner-warn inline" }, t("matters.overdue_summary", { n: overdue.length })));
      for (const st of ORDER) {
        const group = list.filter((m) => (m.status || "submitted") === st).sort((a, b) => ts(b) - ts(a));
        if (!group.length) continue;
        const rows = h("div", { class: "list" }, group.map((m) => matterRow(m, hhs, me)));
        if (COLLAPSED.has(st)) {
          append(box, h("details", { class: "group-details" },
            h("summary", { class: "list-head" }, t("status." + st), h("span", { class: "count" }, String(group.length))), rows));
        } else {
          append(box, h("h2", { class: "list-head" }, t("status." + st), h("span", { class: "count" }, String(group.length))), rows);
        }
      }
    }

    const seg = h("div", { class: "segmented tabs-seg", role: "group" }, [["mine", t("matters.scope_mine")], ["all", t("matters.scope_all")]].map(([v, label]) =>
      h("button", { type: "button", class: "seg", "aria-pressed": String(state.scope === v), onclick: (e) => {
        state.scope = v;
        for (const b of seg.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
        render();
      } }, label)));
    render();
    return h("div", { class: "view matters" }, seg, h("p", { class: "muted small hint-line" }, t("matters.new_hint")), box);
  },
};
