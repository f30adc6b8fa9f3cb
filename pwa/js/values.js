// How a field's value reads to a person, in conflicts and in edits the server sent back.

import { t, has } from "./i18n.js";
import { statusChip } from "./ui.js";

const ENUMS = { gender: "gender", residence: "residence", urgency: "urgency", handling_mode: "handling", channel: "channel", level: "level" };
// references to other records: meaningless as raw ids to the person reading
export const ID_FIELDS = new Set(["household_id", "resident_id", "matter_id", "visit_id", "assignee_id", "grid_id", "for_resident_id", "for_user_id", "duplicate_of"]);

export function fieldLabel(collection, name) {
  const key = `field.${collection}.${name}`;
  return has(key) ? t(key) : name;
}

export function showValue(v) {
  if (v === null || v === undefined || v === "") return t("value.empty");
  if (typeof v === "boolean") return v ? t("value.yes") : t("value.no");
  if (Array.isArray(v)) return v.length ? v.join("、") : t("value.empty");
  if (typeof v === "object") {
    if ("add" in v || "remove" in v) {
      const parts = [];
      if ((v.add || []).length) parts.push(t("value.added", { list: v.add.join("、") }));
      if ((v.remove || []).length) parts.push(t("value.removed", { list: v.remove.join("、") }));
      return parts.join("；") || t("value.empty");
    }
    if (typeof v.lat === "number") return `${v.lat.toFixed(5)}, ${v.lng.toFixed(5)}`;
    return JSON.stringify(v);
  }
  return String(v);
}

/** A field's value for display: statuses as chips, choices in words, the rest as text. */
export function display(field, v) {
  if ((field === "status" || field === "to" || field === "from") && typeof v === "string") return statusChip(v);
  if (ENUMS[field] && typeof v === "string" && has(`${ENUMS[field]}.${v}`)) return t(`${ENUMS[field]}.${v}`);
  return showValue(v);
}
