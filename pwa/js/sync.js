// The sync loop: push the outbox, pull the changes, upload photos. No DOM here (docs/pwa.md).
//
// Everything it does is safe to repeat: a batch whose answer was lost is re-sent with the same
// mids (the server answers from its log), a page is applied with its cursor in one transaction,
// an upload resumes from the server's offset. So a tab closed or reloaded mid-sync loses nothing.

import * as api from "./api.js";
import * as db from "./db.js";
import { setServerOffset } from "./model.js";

const MAX_BATCH = 500;
const MAX_BATCH_BYTES = 1536 * 1024;
const CHUNK = 64 * 1024; // small: a 2G link that drops mid-photo loses at most one chunk
const PERIOD_MS = 5 * 60 * 1000;

export class Sync extends EventTarget {
  constructor() {
    super();
    this.running = null;
    this.failures = 0;
    this.retryTimer = null;
    this.periodTimer = null;
    this.started = false;
    this.state = {
      running: false, pending: 0, lastSyncAt: null, lastError: null,
      progress: { recordsDone: 0, photosDone: 0, photosTotal: 0, pushed: 0, toPush: 0 },
    };
  }

  status() { return { ...this.state, progress: { ...this.state.progress } }; }

  emit(type, detail) { this.dispatchEvent(new CustomEvent(type, { detail })); }

  async update(patch) {
    Object.assign(this.state, patch);
    this.state.pending = (await db.outbox()).length;
    this.emit("status", this.status());
  }

  start() {
    if (this.started) return;
    this.started = true;
    db.getMeta("last_sync_at").then((t) => this.update({ lastSyncAt: t || null }));
    if (typeof window !== "undefined" && !this.listening) {
      this.listening = true; // once per page: start() after stop() must not pile listeners up
      window.addEventListener("online", () => { if (this.started) this.run(); });
      window.addEventListener("gridbook:changed", () => this.update({}));
      document.addEventListener("visibilitychange", () => {
        if (this.started && document.visibilityState === "visible" && navigator.onLine) this.run();
      });
    }
    this.periodTimer = setInterval(() => { if (navigator.onLine) this.run(); }, PERIOD_MS);
    this.run();
  }

  stop() {
    clearInterval(this.periodTimer);
    clearTimeout(this.retryTimer);
    this.started = false;
  }

  run() {
    if (this.running) return this.running;
    this.running = this._run().finally(() => { this.running = null; });
    return this.running;
  }

  async _run() {
    clearTimeout(this.retryTimer);
    const session = await db.getMeta("session");
    if (!session) return { ok: false, reason: "signed_out" };
    await this.update({ running: true, lastError: null,
      progress: { recordsDone: 0, photosDone: 0, photosTotal: 0, pushed: 0, toPush: (await db.outbox()).length } });
    try {
      await this.push();
      await this.pull();
      await this.uploadBlobs();
      const at = new Date().toISOString();
      await db.setMeta("last_sync_at", at);
      this.failures = 0;
      await this.update({ running: false, lastSyncAt: at });
      return { ok: true };
    } catch (e) {
      if (e instanceof api.ApiError && e.code === "device_revoked") {
        await db.wipe();
        await this.update({ running: false, lastError: { code: e.code, message: e.message } });
        this.emit("revoked", { message: e.message });
        this.emit("changed");
        return { ok: false, reason: "revoked" };
      }
      this.failures += 1;
      const code = e instanceof api.ApiError ? e.code : "error";
      await this.update({ running: false, lastError: { code, message: e.message || String(e) } });
      if (code !== "unauthorized") this.retryLater();
      return { ok: false, reason: code };
    }
  }

  // Exponential back-off with jitter: 2 s, 4 s … at most 5 minutes.
  retryLater() {
    const base = Math.min(PERIOD_MS, 2000 * 2 ** Math.min(this.failures - 1, 10));
    const delay = base / 2 + Math.random() * base / 2;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => { if (navigator.onLine) this.run(); }, delay);
  }

  async learnTime(serverTime) {
    const offset = Date.parse(serverTime) - Date.now();
    if (!Number.isFinite(offset)) return;
    setServerOffset(offset);
    const s = await db.getMeta("session");
    if (s) await db.setMeta("session", { ...s, server_offset_ms: offset });
  }

  async push() {
    for (;;) {
      const ob = await db.outbox();
      if (!ob.length) break;
      const batch = [];
      let bytes = 0;
      for (const m of ob) {
        const w = { mid: m.mid, collection: m.collection, id: m.id, op: m.op, base: m.base, fields: m.fields, at: m.at };
        const size = JSON.stringify(w).length * 3; // worst case UTF-8
        if (batch.length && (batch.length >= MAX_BATCH || bytes + size > MAX_BATCH_BYTES)) break;
        batch.push(w);
        bytes += size;
      }
      const res = await api.push(batch, ob.length);
      await this.learnTime(res.server_time);
      // applied, merged, conflict and rejected all leave the outbox: conflicts and rejections come
      // back as `conflicts` records with the next pull, where the user sees them.
      await db.dequeue(res.results.map((r) => r.mid));
      this.state.progress.pushed += batch.length;
      await this.update({});
      this.emit("changed");
    }
    await db.dropOrphans();
  }

  async pull() {
    let cursor = (await db.getMeta("cursor")) || null;
    for (;;) {
      let page;
      try {
        page = await api.pull(cursor);
      } catch (e) {
        if (e instanceof api.ApiError && (e.code === "cursor_expired" || (e.code === "invalid_request" && cursor))) {
          // the outbox was pushed just before; start the replica again, never the outbox
          await this.push();
          await db.clearReplica();
          cursor = null;
          continue;
        }
        throw e;
      }
      await db.applyPage(page.changes, page.cursor);
      await this.learnTime(page.server_time);
      cursor = page.cursor;
      this.state.progress.recordsDone += page.changes.length;
      await this.update({});
      if (page.changes.length) this.emit("changed");
      if (!page.more) break;
    }
  }

  async uploadBlobs() {
    const pending = await db.pendingBlobs();
    this.state.progress.photosTotal = pending.length;
    this.state.progress.photosDone = 0;
    await this.update({});
    let mismatch = null;
    for (const b of pending) {
      try {
        await this.uploadOne(b);
      } catch (e) {
        // the bytes stored on this phone do not match their name: the others still go up
        if (!(e instanceof api.ApiError && e.code === "hash_mismatch")) throw e;
        mismatch = e;
      }
      this.state.progress.photosDone += 1;
      await this.update({});
    }
    if (mismatch) throw mismatch;
  }

  async uploadOne(b) {
    const size = b.blob.size;
    let offset = 0;
    try {
      const h = await api.blobHead(b.sha256);
      offset = Number(h.headers.get("Upload-Offset") || 0);
    } catch (e) {
      if (!(e instanceof api.ApiError && e.status === 404)) throw e;
    }
    while (offset < size) {
      const chunk = b.blob.slice(offset, Math.min(size, offset + CHUNK));
      try {
        const r = await api.blobPatch(b.sha256, offset, size, chunk);
        offset = Number(r.headers.get("Upload-Offset"));
      } catch (e) {
        if (e instanceof api.ApiError && e.code === "offset_mismatch") {
          offset = Number((e.details && e.details.upload_offset) ?? e.headers.get("Upload-Offset"));
          continue;
        }
        throw e;
      }
    }
    await db.markUploaded(b.sha256);
  }
}

export const sync = new Sync();
