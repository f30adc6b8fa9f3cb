// The peer side of the benchmark: a PouchDB server (express-pouchdb on pouchdb-node, LevelDB) and a
// PouchDB client (pouchdb-node) replicating through the link proxy. Driven by bench/peer.py.
//
//   node pouch.js serve <port> <dir>      the server; prints "listening <port>"
//   node pouch.js job < job.json          one client job (load, firstsync, fieldday, bulk); prints JSON
//
// Stock settings everywhere: express-pouchdb's "minimumForPouchDB" mode (compression on, no auth,
// its lightest configuration), PouchDB's default replication (batch_size 100, batches_limit 10).
"use strict";

const fs = require("fs");
const PouchDB = require("pouchdb-node");

// Node's fetch in PouchDB (node-fetch 2) sends "Connection: close" unless given an agent: a new TCP
// connection per request. A browser keeps connections alive, six per host; so do we, to give
// PouchDB its best case.
const http = require("http");
// Like a browser, a request that fails on a kept-alive connection the server has just closed (its
// keep-alive timeout ran out while a slow link was still delivering the last response) is sent
// again once on a new connection.
let agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
let retries = 0;
async function fetchAgain(u, opts) {
  try {
    return await PouchDB.fetch(u, { ...opts, agent });
  } catch (e) {
    if (!(e && e.type === "system")) throw e;
    retries += 1;
    return PouchDB.fetch(u, { ...opts, agent });
  }
}
function remote(url) {
  return new PouchDB(url, { fetch: fetchAgain });
}

function now() { return Number(process.hrtime.bigint()) / 1e6; }

async function serve(port, dir) {
  const express = require("express");
  fs.mkdirSync(dir, { recursive: true });
  const Pouch = PouchDB.defaults({ prefix: dir.replace(/\/?$/, "/") });
  const app = express();
  app.use(require("express-pouchdb")(Pouch, { mode: "minimumForPouchDB", inMemoryConfig: true, logPath: dir + "/log.txt" }));
  const server = app.listen(port, "127.0.0.1", () => console.log("listening " + server.address().port));
  // stop by ourselves after an hour whatever happens to the parent
  setTimeout(() => process.exit(0), 3600 * 1000).unref();
}

function docOf(rec) {
  const { id, version, ...rest } = rec.data;
  return { _id: rec.id, type: rec.collection, ...rest };
}

function merge(doc, fields) {
  for (const [k, v] of Object.entries(fields)) {
    if (v && typeof v === "object" && !Array.isArray(v) && ("add" in v || "remove" in v)) {
      const s = new Set(doc[k] || []);
      (v.add || []).forEach((x) => s.add(x));
      (v.remove || []).forEach((x) => s.delete(x));
      doc[k] = [...s].sort();
    } else doc[k] = v;
  }
  return doc;
}

// Apply edits as a PouchDB app would: a create is a put of a new doc; an update reads the doc and
// writes it back whole with the changed fields (a new revision). A status event also moves its matter.
async function apply(db, edits) {
  for (const e of edits) {
    if (e.create) {
      await db.put({ _id: e.id, type: e.collection, ...e.fields });
      if (e.collection === "matter_events" && e.fields.kind === "status") {
        const m = await db.get(e.fields.matter_id);
        m.status = e.fields.to;
        await db.put(m);
      }
    } else {
      const d = await db.get(e.id);
      await db.put(merge(d, e.fields));
    }
  }
}

// A command to the link proxy's control port (bench/linkproxy.py): "profile 2g", "reset".
function control(port, cmd) {
  const net = require("net");
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1", () => sock.write(cmd + "\n"));
    let data = "";
    sock.on("data", (d) => { data += d; });
    sock.on("end", () => resolve(data));
    sock.on("error", reject);
  });
}

async function job(j) {
  if (j.kind === "load") {
    const db = remote(j.url);
    const docs = j.records.map(docOf);
    for (let i = 0; i < docs.length; i += 1000) await db.bulkDocs(docs.slice(i, i + 1000));
    return { docs: (await db.info()).doc_count };
  }
  if (j.kind === "firstsync") {
    const local = new PouchDB(j.local);
    const t0 = now();
    const r = await PouchDB.replicate(remote(j.remote), local);
    const ms = now() - t0;
    const info = await local.info();
    await local.close();
    return { ms, docs_written: r.docs_written, doc_count: info.doc_count, ok: r.ok };
  }
  if (j.kind === "fieldday") {
    const local = new PouchDB(j.local);
    // yesterday's sync, both ways, through the same address (PouchDB keys its checkpoints by it) on a
    // good link; not measured
    await PouchDB.sync(local, remote(j.remote));
    // once more, as a phone that stayed online a little longer: the push side's checkpoint catches up
    // with the documents the pull side wrote meanwhile (PouchDB's best case for the next day)
    await PouchDB.sync(local, remote(j.remote));
    await apply(remote(j.direct), j.elsewhere);         // meanwhile, elsewhere
    await apply(local, j.phone);                        // the day on the phone, offline
    agent.destroy();                                    // a new day: no connection left open
    agent = new http.Agent({ keepAlive: true, maxSockets: 6 });
    await control(j.control, "profile " + j.profile);
    await control(j.control, "reset");
    retries = 0;
    const t0 = now();
    const r = await PouchDB.sync(local, remote(j.remote));      // a connection at last: push and pull
    const ms = now() - t0;
    const info = await local.info();
    await local.close();
    return { ms, pushed: r.push.docs_written, pulled: r.pull.docs_written, doc_count: info.doc_count,
             ok: r.push.ok && r.pull.ok };
  }
  if (j.kind === "bulk") {
    const db = remote(j.url);
    const docs = j.records.map((r) => ({ _id: r.id, type: r.collection, ...r.fields }));
    const times = [];
    for (let i = 0; i < docs.length; i += j.batch) {
      const t0 = now();
      const res = await db.bulkDocs(docs.slice(i, i + j.batch));
      times.push(now() - t0);
      const bad = res.filter((x) => x.error);
      if (bad.length) throw new Error("bulk: " + JSON.stringify(bad[0]));
    }
    return { times_ms: times };
  }
  throw new Error("unknown job " + j.kind);
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  if (cmd === "serve") return serve(Number(args[0]), args[1]);
  if (cmd === "job") {
    const text = fs.readFileSync(0, "utf8");
    const out = await job(JSON.parse(text));
    out.retries = retries;
    process.stdout.write(JSON.stringify(out) + "\n");
    return;
  }
  throw new Error("usage: pouch.js serve <port> <dir> | job < job.json");
}

main().catch((e) => { console.error(e && e.stack || e); process.exit(1); });
