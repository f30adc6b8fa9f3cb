// fetch wrapper for /api/v1: bearer token, gzip request bodies, errors as ApiError.

import * as db from "./db.js";

export class ApiError extends Error {
  constructor(status, code, message, details, headers) {
    super(message || code || `HTTP ${status}`);
    this.status = status;       // 0 = network error (offline, cut connection)
    this.code = code || (status === 0 ? "network" : "http_" + status);
    this.details = details || {};
    this.headers = headers;
  }
}

async function token() {
  const s = await db.getMeta("session");
  return s && s.token;
}

async function gzip(text) {
  if (typeof CompressionStream === "undefined") return null;
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).arrayBuffer();
}

export async function call(method, path, { body, json, headers = {}, auth = true, raw = false } = {}) {
  const h = { ...headers };
  if (auth) {
    const t = await token();
    if (!t) throw new ApiError(401, "unauthorized", "not signed in");
    h["Authorization"] = "Bearer " + t;
  }
  let payload = body;
  if (json !== undefined) {
    const text = JSON.stringify(json);
    h["Content-Type"] = "application/json";
    const zipped = text.length > 1024 ? await gzip(text) : null;
    if (zipped) {
      h["Content-Encoding"] = "gzip";
      payload = zipped;
    } else {
      payload = text;
    }
  }
  let res;
  try {
    res = await fetch("/api/v1" + path, { method, headers: h, body: payload, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, "network", String(e && e.message || e));
  }
  if (raw) return res;
  if (res.status === 204 || method === "HEAD") {
    if (!res.ok) throw new ApiError(res.status, res.status === 404 ? "not_found" : "http_" + res.status, "", {}, res.headers);
    return { headers: res.headers, status: res.status };
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    if (res.ok) throw new ApiError(0, "network", "truncated response");
  }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code, err.message, err.details, res.headers);
  }
  return data;
}

// new_password: replaces a one-time password (answered by 403 password_change_required without it).
export const login = (username, password, device_name, previous_device_id, new_password) =>
  call("POST", "/auth/login", { json: { username, password, device_name, previous_device_id, new_password }, auth: false });

export const push = (mutations, outbox_depth) =>
  call("POST", "/sync/push", { json: { protocol: 1, mutations, outbox_depth } });

// lean=1 (an extension of v1): `data` leaves out the id, version and deleted the change carries;
// db.applyPage puts them back. Pages of 1,000, the protocol's maximum: fewer round trips on 2G.
export const pull = (cursor, limit = 1000) =>
  call("GET", "/sync/pull?" + new URLSearchParams(cursor ? { cursor, limit, lean: 1 } : { limit, lean: 1 }));

export const blobHead = (sha) => call("HEAD", "/blobs/" + sha);

export const blobPatch = (sha, offset, length, chunk) =>
  call("PATCH", "/blobs/" + sha, {
    body: chunk,
    headers: {
      "Upload-Offset": String(offset),
      "Upload-Length": String(length),
      "Content-Type": "application/offset+octet-stream",
    },
  });

export async function blobGet(sha) {
  const res = await call("GET", "/blobs/" + sha, { raw: true });
  if (!res.ok) throw new ApiError(res.status, "not_found", "");
  return res.blob();
}
