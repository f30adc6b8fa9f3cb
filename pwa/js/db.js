// The only module that touches IndexedDB (docs/pwa.md). Never awaits the network inside a
// transaction: callers write, the transaction commits, then they sync.

const DB_NAME = "gridbook";
const DB_VERSION = 1;
let dbp = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new DOMException("aborted", "AbortError"));
  });
}

export function open() {
  if (dbp) return dbp;
  dbp = new Promise((resolve, reject) => {
    const r = indexedDB.open(DB_NAME, DB_VERSION);
    r.onupgradeneeded = () => {
      const db = r.result;
      const records = db.createObjectStore("records", { keyPath: ["collection", "id"] });
      records.createIndex("collection", "collection");
      records.createIndex("household", ["collection", "data.household_id"]);
      records.createIndex("matter", ["collection", "data.matter_id"]);
      const outbox = db.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
      outbox.createIndex("record", ["collection", "id"]);
      db.createObjectStore("meta");
      db.createObjectStore("blobs", { keyPath: "sha256" });
    };
    r.onsuccess = () => {
      const db = r.result;
      // another tab upgraded the schema: let it, and reopen on next use
      db.onversionchange = () => { db.close(); dbp = null; };
      resolve(db);
    };
    r.onerror = () => reject(r.error);
    r.onblocked = () => reject(new Error("database blocked by another tab"));
  });
  return dbp;
}

async function store(name, mode = "readonly") {
  const db = await open();
  const tx = db.transaction(name, mode);
  return { tx, s: tx.objectStore(name) };
}

export async function getMeta(key) {
  const { s } = await store("meta");
  return req(s.get(key));
}

export async function setMeta(key, value) {
  const { tx, s } = await store("meta", "readwrite");
  s.put(value, key);
  return done(tx);
}

export async function get(collection, id) {
  const { s } = await store("records");
  return req(s.get([collection, id]));
}

export async function all(collection) {
  const { s } = await store("records");
  return req(s.index("collection").getAll(collection));
}

// byIndex("household", ["visits", hid]) or byIndex("matter", ["matter_events", mid])
export async function byIndex(index, key) {
  const { s } = await store("records");
  return req(s.index(index).getAll(key));
}

// One page of a pull and its cursor, in one transaction: a reload mid-sync never leaves the
// replica ahead of (or behind) the cursor.
export async function applyPage(changes, cursor) {
  const db = await open();
  const tx = db.transaction(["records", "outbox", "meta"], "readwrite");
  const records = tx.objectStore("records");
  const pendingIdx = tx.objectStore("outbox").index("record");
  const meta = tx.objectStore("meta");
  const orphans = (await req(meta.get("orphans"))) || [];
  const before = orphans.length;
  // a matter that leaves the scope is kept while events of it wait in the outbox (docs/proxy.md)
  const waitingMatters = changes.some((c) => c.removed && c.collection === "matters")
    ? await pendingEventMatters(tx.objectStore("outbox")) : new Set();
  for (const c of changes) {
    const key = [c.collection, c.id];
    if (c.removed) {
      // left the user's scope: dropped, unless unsynced edits still need it (they are pushed first)
      const pending = (await req(pendingIdx.count(key))) + (c.collection === "matters" && waitingMatters.has(c.id) ? 1 : 0);
      if (!pending) records.delete(key);
      else orphans.push(key); // dropped after the push that sends those edits (dropOrphans)
      continue;
    }
    // pages arrive in feed order, so a later page never carries an older version: no read needed
    // a lean page (api.pull) leaves id, version and deleted out of `data`: the change carries them
    const data = { ...(c.data || {}), id: c.id, version: c.version, deleted: !!c.deleted };
    records.put({ collection: c.collection, id: c.id, version: c.version, deleted: !!c.deleted, data });
  }
  if (orphans.length !== before) meta.put(orphans, "orphans");
  meta.put(cursor, "cursor");
  return done(tx);
}

async function pendingEventMatters(outboxStore) {
  const rows = await req(outboxStore.getAll());
  return new Set(rows.filter((r) => r.collection === "matter_events" && r.fields && r.fields.matter_id).map((r) => r.fields.matter_id));
}

// Records that left the user's scope while edits of them waited: once nothing waits, they go.
export async function dropOrphans() {
  const db = await open();
  const tx = db.transaction(["records", "outbox", "meta"], "readwrite");
  const meta = tx.objectStore("meta");
  const orphans = (await req(meta.get("orphans"))) || [];
  if (!orphans.length) return done(tx);
  const idx = tx.objectStore("outbox").index("record");
  const waitingMatters = await pendingEventMatters(tx.objectStore("outbox"));
  const keep = [];
  for (const key of orphans) {
    if ((await req(idx.count(key))) || (key[0] === "matters" && waitingMatters.has(key[1]))) keep.push(key);
    else tx.objectStore("records").delete(key);
  }
  meta.put(keep, "orphans");
  return done(tx);
}

export async function clearReplica() {
  const db = await open();
  const tx = db.transaction(["records", "meta"], "readwrite");
  tx.objectStore("records").clear();
  tx.objectStore("meta").delete("cursor");
  return done(tx);
}

export async function enqueue(mutation) {
  const { tx, s } = await store("outbox", "readwrite");
  s.add(mutation);
  return done(tx);
}

export async function outbox() {
  const { s } = await store("outbox");
  return req(s.getAll());
}

export async function dequeue(mids) {
  const want = new Set(mids);
  if (!want.size) return;
  const db = await open();
  const tx = db.transaction("outbox", "readwrite");
  const s = tx.objectStore("outbox");
  const rows = await req(s.getAll());
  for (const row of rows) if (want.has(row.mid)) s.delete(row.seq);
  return done(tx);
}

export async function putBlob(entry) {
  const { tx, s } = await store("blobs", "readwrite");
  s.put({ uploaded: false, created_at: new Date().toISOString(), ...entry });
  return done(tx);
}

export async function getBlob(sha) {
  const { s } = await store("blobs");
  return req(s.get(sha));
}

export async function pendingBlobs() {
  const { s } = await store("blobs");
  const rows = await req(s.getAll());
  return rows.filter((b) => !b.uploaded);
}

export async function markUploaded(sha) {
  const db = await open();
  const tx = db.transaction("blobs", "readwrite");
  const s = tx.objectStore("blobs");
  const row = await req(s.get(sha));
  if (row) s.put({ ...row, uploaded: true });
  return done(tx);
}

export async function counts() {
  const db = await open();
  const tx = db.transaction(["records", "outbox", "blobs"]);
  const out = { outbox: await req(tx.objectStore("outbox").count()), blobsPending: 0, records: {} };
  const blobs = await req(tx.objectStore("blobs").getAll());
  out.blobsPending = blobs.filter((b) => !b.uploaded).length;
  const idx = tx.objectStore("records").index("collection");
  for (const c of ["households", "residents", "visits", "matters", "matter_events", "conflicts"]) {
    out.records[c] = await req(idx.count(c));
  }
  return out;
}

// Revoked device (lost or stolen phone): everything goes, unsent edits included.
export async function wipe() {
  const db = await open();
  const tx = db.transaction(["records", "outbox", "meta", "blobs"], "readwrite");
  for (const n of ["records", "outbox", "meta", "blobs"]) tx.objectStore(n).clear();
  return done(tx);
}
