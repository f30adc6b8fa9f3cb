// Proxy handling (代办, docs/proxy.md), the pure part: a copy of the rules of sync/proxy.py that
// the screens need offline — which steps an agent may take now, where each piece of material is,
// whether the resident's delegation holds. The server decides; this only chooses what to offer.

// step -> the status it moves the matter to (null: progress without a status change)
export const STEPS = {
  accepted: "in_progress",
  waiting_materials: "waiting_materials",
  materials_complete: "in_progress",      // only when coming back from waiting_materials
  submitted_to_window: null,
  result_obtained: null,
  delivered: "resolved",
  escalated: "escalated",
};
export const CUSTODY_PLACE = {
  received: "agent", handed_to_window: "window", back_from_window: "agent", kept_by_window: "kept", returned: "resident",
};
export const SATISFACTION = ["satisfied", "basically_satisfied", "dissatisfied"];
const TAKE_ON_FROM = new Set(["submitted", "accepted", "assigned", "reopened"]);
const URGENCY_ORDER = { critical: 0, urgent: 1, normal: 2 };
export const ACTIVE = (status) => !["closed", "not_accepted", "merged_duplicate"].includes(status || "submitted");

/** Today's local date (the town's calendar, UTC+8) as YYYY-MM-DD. */
export function localDate(iso) {
  const d = iso ? new Date(iso) : new Date();
  return new Date(d.getTime() + 8 * 3600 * 1000).toISOString().slice(0, 10);
}

export function isProxy(m) {
  return !!m && m.handling_mode === "proxy";
}

const byAt = (a, b) => String(a.at || a._at || "").localeCompare(String(b.at || b._at || ""));

/** The delegation events that authorise `agentId` on the date `on` (YYYY-MM-DD). */
export function validDelegations(events, agentId, on = localDate()) {
  return events.filter((e) => e.kind === "delegation" && e.for_user_id === agentId && e.data && e.data.until >= on);
}

/** Per material code+form: the custody actions in order, and where the piece is now. */
export function custody(events) {
  const out = new Map();
  for (const e of events.filter((x) => x.kind === "custody" && x.applied !== false).sort(byAt)) {
    for (const it of (e.data && e.data.items) || []) {
      const key = `${it.code}|${it.form}`;
      if (!out.has(key)) out.set(key, { code: it.code, form: it.form, name: it.name, trail: [] });
      out.get(key).trail.push({ action: e.data.action, at: e.at || e._at, by: e.actor_id || e.created_by, pending: !!e._pending });
    }
  }
  for (const v of out.values()) v.place = CUSTODY_PLACE[v.trail[v.trail.length - 1].action];
  return out;
}

/** Where a checklist item is: the original if one was received, else the copy; null if not received. */
export function itemState(trails, code) {
  return trails.get(`${code}|original`) || trails.get(`${code}|copy`) || null;
}

/** Originals received from the resident that are neither returned nor kept by the window. */
export function unaccounted(events) {
  return [...custody(events).values()].filter((v) => v.form === "original" && (v.place === "agent" || v.place === "window"));
}

export function stepsDone(events) {
  return new Set(events.filter((e) => e.kind === "step" && e.applied !== false).map((e) => e.step));
}

/** The steps the delegated agent may take on the matter now, in the order of the work. */
export function nextSteps(m, events) {
  const st = m.status || "submitted";
  const done = stepsDone(events);
  const out = [];
  if (TAKE_ON_FROM.has(st)) out.push("accepted");
  if (st === "waiting_materials") out.push("materials_complete");
  if (st === "in_progress") {
    out.push("waiting_materials");
    if (!done.has("submitted_to_window")) out.push("submitted_to_window");
    out.push("result_obtained", "delivered", "escalated");
  }
  return out;
}

/** My delegated matters: the most urgent first, then the nearest (effective) deadline. */
export function sortForAgent(list) {
  const dl = (m) => m.effective_deadline || m.deadline || "9999-12-31";
  return [...list].sort((a, b) => (URGENCY_ORDER[a.urgency || "normal"] - URGENCY_ORDER[b.urgency || "normal"])
    || dl(a).localeCompare(dl(b)) || String(a.raised_at || "").localeCompare(String(b.raised_at || "")));
}

/** The deadline the matter is held to: moved on by the days it waited for materials. */
export function heldDeadline(m) {
  return m.effective_deadline || m.deadline || null;
}

export function isOverdueProxy(m, day = localDate()) {
  const d = heldDeadline(m);
  return !!d && d < day && !["resolved", "closed", "not_accepted", "merged_duplicate", "waiting_materials"].includes(m.status);
}
