// My grid's households: search, tag filter, and the ones not visited for 30 days first (W2:
// "坐等群众上门多、主动走访入户少" — the list itself points at who is waiting for a visit).

import { h, clear, append } from "../dom.js";
import { t } from "../i18n.js";
import * as model from "../model.js";
import { sync } from "../sync.js";
import { relTime, nowMs } from "../format.js";
import { HOUSEHOLD_TAGS, PRIORITY, tagLabel } from "../tags.js";
import { pendingMark, tagList, empty } from "../ui.js";
import { icon } from "../icons.js";

const OVERDUE_DAYS = 30;
const PAGE = 150;

// Kept across re-renders (a pull landing while the worker searches keeps the search).
const state = { q: "", tag: null, limit: PAGE };

function digits(s) {
  return String(s || "").replace(/[^0-9]/g, "");
}

function row(r) {
  const { hh, last, days } = r;
  const overdue = days > OVERDUE_DAYS;
  const side = last
    ? h("span", { class: ["visit-age", overdue ? "overdue" : null] }, overdue ? t("households.not_visited_days", { n: Math.floor(days) }) : t("households.visited_ago", { age: relTime(last) }))
    : h("span", { class: "visit-age overdue" }, t("households.never_visited"));
  return h("a", { href: `#/household/${hh.id}`, class: ["row", "hh-row", overdue ? "row-overdue" : null], dataset: { testid: "household-row" } },
    h("div", { class: "row-main" },
      h("div", { class: "row-title" }, h("strong", null, hh.head_name || t("households.no_name")), hh._pending ? pendingMark() : null),
      h("div", { class: "row-sub" }, hh.address || ""),
      tagList(hh.tags, tagLabel, { priority: PRIORITY })),
    h("div", { class: "row-side" }, side));
}

export default {
  title: () => t("households.title"),
  tab: "households",
  live: true,
  async render(ctx) {
    const [hhs, visits, residents] = await Promise.all([
      model.list("households"), model.list("visits"), model.list("residents"),
    ]);
    const last = new Map();
    for (const v of visits) {
      const ts = Date.parse(v.visited_at);
      if (!Number.isFinite(ts)) continue;
      const cur = last.get(v.household_id);
      if (!cur || ts > cur.ts) last.set(v.household_id, { ts, at: v.visited_at });
    }
    const people = new Map();
    for (const p of residents) {
      if (!people.has(p.household_id)) people.set(p.household_id, []);
      people.get(p.household_id).push(p.name || "", digits(p.phone));
    }
    const now = nowMs();
    const rows = hhs.map((hh) => {
      const lv = last.get(hh.id);
      return {
        hh,
        last: lv ? lv.at : null,
        ts: lv ? lv.ts : -Infinity,
        days: lv ? (now - lv.ts) / 86400000 : Infinity,
        text: [hh.head_name, hh.address, hh.phone, digits(hh.phone), ...(people.get(hh.id) || [])].join(" ").toLowerCase(),
      };
    });
    // The longest without a visit first; households never visited before all of them.
    rows.sort((a, b) => a.ts - b.ts || String(a.hh.address).localeCompare(String(b.hh.address), "zh-CN"));

    const listEl = h("div", { class: "list", "aria-live": "polite" });
    const summary = h("p", { class: "summary" });

    function renderList() {
      clear(listEl);
      const q = state.q.trim().toLowerCase();
      const qd = digits(q);
      const shown = rows.filter((r) =>
        (!state.tag || (r.hh.tags || []).includes(state.tag)) &&
        (!q || q.split(/\s+/).every((w) => r.text.includes(w)) || (qd.length >= 3 && r.text.includes(qd))));
      const overdue = shown.filter((r) => r.days > OVERDUE_DAYS);
      const recent = shown.filter((r) => r.days <= OVERDUE_DAYS);
      summary.textContent = t("households.summary", { n: shown.length, overdue: overdue.length });
      if (!rows.length) {
        const s = sync.status();
        append(listEl, s.running || !s.lastSyncAt
          ? empty(t("households.loading"), h("span", { class: "spinner dark" }))
          : empty(t("households.none")));
        return;
      }
      if (!shown.length) {
        append(listEl, empty(t("households.no_match")));
        return;
      }
      let budget = state.limit;
      const part = (title, list, cls) => {
        if (!list.length || budget <= 0) return;
        append(listEl, h("h2", { class: ["list-head", cls] }, title, h("span", { class: "count" }, String(list.length))));
        const take = list.slice(0, budget);
        budget -= take.length;
        append(listEl, take.map(row));
      };
      part(t("households.section_overdue", { n: OVERDUE_DAYS }), overdue, "warn");
      part(t("households.section_recent", { n: OVERDUE_DAYS }), recent, null);
      if (shown.length > state.limit) {
        append(listEl, h("button", { type: "button", class: "btn btn-secondary btn-block", onclick: () => { state.limit += PAGE; renderList(); } },
          t("households.show_more", { n: shown.length - state.limit })));
      }
    }

    const search = h("input", {
      type: "search", class: "input search", value: state.q, placeholder: t("households.search_placeholder"),
      "aria-label": t("households.search_label"), enterkeyhint: "search", dataset: { keep: "1" },
    });
    search.addEventListener("input", () => { state.q = search.value; state.limit = PAGE; renderList(); });

    const chipRow = h("div", { class: "chips scroll", role: "group", "aria-label": t("households.filter_label") },
      [null, ...HOUSEHOLD_TAGS].map((tag) => h("button", {
        type: "button", class: "chip", "aria-pressed": String(state.tag === tag),
        onclick: () => {
          state.tag = state.tag === tag || tag === null ? null : tag;
          state.limit = PAGE;
          for (const b of chipRow.children) b.setAttribute("aria-pressed", String(b.dataset.tag === (state.tag ?? "")));
          renderList();
        },
        dataset: { tag: tag ?? "" },
      }, tag ? tagLabel(tag) : t("households.filter_all"))));

    renderList();
    return h("div", { class: "view households" },
      h("div", { class: "search-bar" }, h("div", { class: "search-wrap" }, icon("search", "icon search-icon"), search)),
      chipRow,
      h("div", { class: "list-tools" }, summary,
        ctx.me.role === "proxy_agent" ? null : h("a", { href: "#/household/new", class: "btn btn-small btn-secondary" }, icon("plus"), t("households.new"))),
      listEl);
  },
};
