// The read model (the server replica with the outbox laid over it) and edits (which go to the
// outbox first: the UI says "saved" only after the outbox transaction committed). docs/pwa.md

import * as db from "./db.js";

const SET_FIELDS = { households: ["tags"], residents: ["tags"] };

// UUID v7 (RFC 9562): 48-bit milliseconds, version, random; time-ordered ids index well.
export function newId() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  let ms = Date.now();
  for (let i = 5; i >= 0; i--) { b[i] = ms % 256; ms = Math.floor(ms / 256); }
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

let offsetMs = 0;

export async function loadSession() {
  const s = await db.getMeta("session");
  offsetMs = (s && s.server_offset_ms) || 0;
  return s;
}

export function setServerOffset(ms) { offsetMs = ms; }

// Edit time as the server would see it: the device clock corrected by the offset learnt at the last sync.
export function now() { return new Date(Date.now() + offsetMs).toISOString(); }

export async function me() {
  const s = await db.getMeta("session");
  return s ? s.user : null;
}

export async function setSession(session) {
  await db.setMeta("session", session);
  offsetMs = session.server_offset_ms || 0;
}

export async function signOut({ force = false } = {}) {
  const c = await db.counts();
  if (c.outbox && !force) {
    const e = new Error("unsent edits");
    e.code = "outbox_not_empty";
    e.pending = c.outbox;
    throw e;
  }
  // keep the device id so that signing in again links the devices (previous_device_id)
  const s = await db.getMeta("session");
  await db.wipe();
  if (s) await db.setMeta("previous_device_id", s.device_id);
  changed();
}

function changed() {
  if (typeof window !== "undefined") window.dispatchEvent(new CustomEvent("gridbook:changed"));
}

function applySet(current, delta) {
  const out = new Set(current || []);
  for (const x of delta.add || []) out.add(x);
  for (const x of delta.remove || []) out.delete(x);
  return [...out].sort();
}

function isDelta(v) {
  return v && typeof v === "object" && !Array.isArray(v) && ("add" in v || "remove" in v);
}

function overlay(base, mutations) {
  let rec = base ? { ...base.data, id: base.id, version: base.version, deleted: base.deleted } : null;
  for (const m of mutations) {
    if (m.op === "delete") {
      rec = { ...(rec || { id: m.id }), _deleted: true, _pending: true };
      continue;
    }
    rec = { ...(rec || { id: m.id, version: 0, created_by: m.created_by, created_at: m.at, _created: true }),
      _pending: true, _at: m.at };
    for (const [k, v] of Object.entries(m.fields || {})) rec[k] = isDelta(v) ? applySet(rec[k], v) : v;
  }
  return rec;
}

function byRecord(outbox) {
  const map = new Map();
  for (const m of outbox) {
    const key = m.collection + "/" + m.id;
    if (!map.has(key)) map.set(key, []);
    map.get(key).push(m);
  }
  return map;
}

// Pending status events move the matter on screen at once (marked pending until the server agrees).
function withPendingMoves(coll, rec, outbox) {
  if (!rec) return rec;
  if (coll === "matters") {
    for (const m of outbox) {
      // a status event, or an agent's step that moves the matter (delivered → resolved, docs/proxy.md)
      if (m.collection === "matter_events" && m.fields && m.fields.matter_id === rec.id && m.fields.to
          && (m.fields.kind === "status" || m.fields.kind === "step")) {
        rec = { ...rec, status: m.fields.to, _pending: true };
      }
    }
  }
  if (coll === "conflicts" && rec._pending && rec.resolution && rec.status === "open") {
    rec = { ...rec, status: "resolved" };
  }
  return rec;
}

export async function view(collection, id) {
  const [base, ob] = [await db.get(collection, id), await db.outbox()];
  const mine = ob.filter((m) => m.collection === collection && m.id === id);
  const rec = overlay(base, mine);
  if (!rec) return undefined;
  return withPendingMoves(collection, rec, ob);
}

function visible(rec) {
  return rec && !rec.deleted && !rec._deleted;
}

async function overlayAll(collection, bases) {
  const ob = await db.outbox();
  const groups = byRecord(ob.filter((m) => m.collection === collection));
  const out = [];
  const seen = new Set();
  for (const b of bases) {
    seen.add(b.id);
    const rec = withPendingMoves(collection, overlay(b, groups.get(collection + "/" + b.id) || []), ob);
    if (visible(rec)) out.push(rec);
  }
  for (const [key, muts] of groups) {
    const id = key.slice(collection.length + 1);
    if (seen.has(id)) continue;
    const rec = withPendingMoves(collection, overlay(null, muts), ob);
    if (visible(rec)) out.push(rec);
  }
  return out;
}

export async function list(collection, filter) {
  const recs = await overlayAll(collection, await db.all(collection));
  return filter ? recs.filter(filter) : recs;
}

export async function listBy(collection, field, value) {
  const index = field === "household_id" ? "household" : field === "matter_id" ? "matter" : null;
  if (!index) return list(collection, (r) => r[field] === value);
  const bases = await db.byIndex(index, [collection, value]);
  // records created or moved here by pending edits are found by the overlay of the whole collection
  const ob = await db.outbox();
  const extra = ob.some((m) => m.collection === collection && m.fields && m.fields[field] !== undefined);
  const recs = extra ? await list(collection) : await overlayAll(collection, bases);
  return recs.filter((r) => r[field] === value);
}

function normaliseCreate(collection, fields) {
  const out = { ...fields };
  for (const f of SET_FIELDS[collection] || []) if (isDelta(out[f])) out[f] = applySet([], out[f]);
  return out;
}

// Create (unknown id) or update (only the given fields, based on the replica's version).
export async function save(collection, id, fields) {
  const base = await db.get(collection, id);
  const ob = await db.outbox();
  const pendingCreate = ob.some((m) => m.collection === collection && m.id === id);
  const isNew = !base && !pendingCreate;
  const who = await me();
  const mutation = {
    mid: newId(), collection, id, op: "upsert", created_by: who ? who.id : null,
    base: base ? base.version : 0,
    fields: isNew ? normaliseCreate(collection, fields) : fields,
    at: now(),
  };
  await db.enqueue(mutation);
  changed();
  return id;
}

export async function remove(collection, id) {
  const base = await db.get(collection, id);
  await db.enqueue({ mid: newId(), collection, id, op: "delete", base: base ? base.version : 0, fields: {}, at: now() });
  changed();
}

export async function moveMatter(matterId, to, note = "") {
  const m = await view("matters", matterId);
  const id = newId();
  await save("matter_events", id, { matter_id: matterId, kind: "status", from: m ? m.status : null, to, note });
  return id;
}

export async function addEvent(matterId, kind, fields = {}) {
  const id = newId();
  await save("matter_events", id, { matter_id: matterId, kind, ...fields });
  return id;
}

export async function resolveConflict(conflictId, resolution, value) {
  const fields = { resolution };
  if (resolution === "value") fields.value = value;
  const base = await db.get("conflicts", conflictId);
  await db.enqueue({ mid: newId(), collection: "conflicts", id: conflictId, op: "upsert",
    base: base ? base.version : 1, fields, at: now() });
  changed();
}

export async function pendingCount() {
  return (await db.outbox()).length;
}
