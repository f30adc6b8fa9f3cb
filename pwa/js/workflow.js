// The matter state machine: a copy of the table in sync/workflow.py (the server decides; this
// only chooses which buttons to offer). Keep the two in step.

export const INITIAL = "submitted";
export const TERMINAL = new Set(["closed", "not_accepted", "merged_duplicate"]);
export const DONE = new Set(["resolved", "closed", "not_accepted", "merged_duplicate"]);
const STAFF = ["staff", "admin"];
const ASSIGNEE = "assignee";
const PROXY = "proxy_agent_assignee"; // the delegated agent of a proxy matter (docs/proxy.md)

export const STATUSES = ["submitted", "accepted", "not_accepted", "merged_duplicate", "assigned", "in_progress",
  "waiting_materials", "escalated", "resolved", "closed", "reopened"];

// [from, to, who may]
export const TRANSITIONS = [
  ["submitted", "accepted", STAFF],
  ["submitted", "in_progress", [PROXY]],
  ["submitted", "not_accepted", STAFF],
  ["submitted", "merged_duplicate", STAFF],
  ["accepted", "assigned", STAFF],
  ["accepted", "in_progress", [...STAFF, PROXY]],
  ["assigned", "in_progress", [...STAFF, ASSIGNEE]],
  ["in_progress", "waiting_materials", [...STAFF, ASSIGNEE]],
  ["waiting_materials", "in_progress", [...STAFF, ASSIGNEE]],
  ["in_progress", "escalated", [...STAFF, ASSIGNEE]],
  ["escalated", "assigned", STAFF],
  ["escalated", "in_progress", STAFF],
  ["in_progress", "resolved", [...STAFF, ASSIGNEE]],
  ["resolved", "closed", STAFF],
  ["resolved", "reopened", STAFF],
  ["closed", "reopened", STAFF],
  ["reopened", "assigned", STAFF],
  ["reopened", "in_progress", [...STAFF, ASSIGNEE]],
];

export function mayTransition(from, to, role, isAssignee, proxyAgent = false) {
  const row = TRANSITIONS.find(([f, tt]) => f === from && tt === to);
  if (!row) return false;
  return row[2].includes(role) || (isAssignee && row[2].includes(ASSIGNEE)) || (proxyAgent && row[2].includes(PROXY));
}

/** The moves this user may offer from `from`, in table order. */
export function nextStatuses(from, role, isAssignee, proxyAgent = false) {
  return TRANSITIONS.filter(([f, to]) => f === from && mayTransition(f, to, role, isAssignee, proxyAgent)).map((r) => r[1]);
}
