// Small reference data the views keep asking for (users, the catalogue, areas), read once per
// change of the local data rather than once per screen.

import * as model from "./model.js";
import { t, getLang } from "./i18n.js";

let cache = null;

export function invalidate() {
  cache = null;
}

if (typeof window !== "undefined") window.addEventListener("gridbook:changed", invalidate);

async function load() {
  const [users, categories, areas] = await Promise.all([
    model.list("users"), model.list("categories"), model.list("areas"),
  ]);
  categories.sort((a, b) => (a.sort ?? 0) - (b.sort ?? 0) || String(a.code).localeCompare(String(b.code)));
  return {
    users: new Map(users.map((u) => [u.id, u])),
    userList: users,
    categories: new Map(categories.map((c) => [c.code, c])),
    categoryList: categories,
    areas: new Map(areas.map((a) => [a.id, a])),
  };
}

export function lookups() {
  if (!cache) cache = load().catch((e) => { cache = null; throw e; });
  return cache;
}

/** A user's display name; "me" for the signed-in user; a neutral word when unknown. */
export function userName(l, id, me) {
  if (!id) return t("common.unknown_user");
  if (me && id === me.id) return t("common.me_named", { name: me.display_name || me.username });
  if (id === "system") return t("common.system");
  const u = l.users.get(id);
  return u ? u.display_name || u.username : t("common.unknown_user");
}

export function categoryName(l, code) {
  if (!code) return t("matter.uncategorised");
  const c = l.categories.get(code);
  if (!c) return code;
  const name = getLang() === "en" ? c.name_en : c.name_zh;
  const parent = c.parent_code ? l.categories.get(c.parent_code) : null;
  const pname = parent ? (getLang() === "en" ? parent.name_en : parent.name_zh) : null;
  return pname ? `${pname} › ${name}` : name;
}

/** The area and every area above it, nearest first. */
export function ancestors(l, areaId) {
  const out = [];
  let a = l.areas.get(areaId);
  const seen = new Set();
  while (a && !seen.has(a.id)) {
    seen.add(a.id);
    out.push(a);
    a = a.parent_id ? l.areas.get(a.parent_id) : null;
  }
  return out;
}

export function areaName(l, areaId) {
  const a = l.areas.get(areaId);
  return a ? a.name : "";
}
