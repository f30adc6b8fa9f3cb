// "修改后重发": a rejected mutation opens its form with what was sent, to be fixed and saved as a
// new edit. The sync panel leaves the values here; the form takes them once, and once the fixed
// edit is saved the rejection is dismissed (resolved "current", queued like any edit).

import * as model from "./model.js";

let held = null;

export function setPrefill(collection, id, fields, extra = {}) {
  held = { collection, id, fields: { ...(fields || {}) }, ...extra };
}

export function takePrefill(collection, id) {
  if (!held || held.collection !== collection || (id && held.id !== id)) return null;
  const p = held;
  held = null;
  return p;
}

/** After the fixed edit is in the outbox: dismiss the rejection it replaces. */
export async function settle(pre) {
  if (pre && pre.conflictId) await model.resolveConflict(pre.conflictId, "current");
}
