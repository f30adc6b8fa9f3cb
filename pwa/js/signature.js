// Signature capture: the resident signs on the screen with a finger. The strokes become a PNG
// (white background, small: a few KB) stored as a blob by its SHA-256 like any photo, so it
// syncs later, resumably, and never holds the record back (protocol §7).

import { h } from "./dom.js";
import { t } from "./i18n.js";
import { sha256Hex } from "./photo.js";
import * as db from "./db.js";
import { remember } from "./ui.js";

/** A signature pad. `.isEmpty()`; `.store()` → the sha256 of the stored PNG (or null when empty). */
export function signaturePad({ label } = {}) {
  const canvas = h("canvas", { class: "sig-canvas", width: 600, height: 220, "aria-label": label || t("sig.pad"), dataset: { testid: "signature-pad" } });
  const ctx = canvas.getContext("2d");
  let strokes = 0;
  let drawing = false;
  let last = null;
  function reset() {
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#111";
    ctx.lineWidth = 4;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    strokes = 0;
    hint.hidden = false;
    dirty.value = "";
  }
  function point(e) {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (canvas.width / r.width), (e.clientY - r.top) * (canvas.height / r.height)];
  }
  canvas.addEventListener("pointerdown", (e) => {
    drawing = true;
    last = point(e);
    if (canvas.setPointerCapture) { try { canvas.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events */ } }
    e.preventDefault();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = point(e);
    ctx.beginPath();
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
    last = p;
    strokes += 1;
    hint.hidden = true;
    dirty.value = String(strokes);
    e.preventDefault();
  });
  const end = () => { drawing = false; };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);
  canvas.addEventListener("pointerleave", end);
  const hint = h("span", { class: "sig-hint" }, t("sig.hint"));
  // a drawn signature counts as unsaved input: the screen is not re-rendered under the finger
  const dirty = h("input", { type: "text", class: "visually-hidden", tabindex: "-1", "aria-hidden": "true", value: "" });
  const clearBtn = h("button", { type: "button", class: "btn btn-link", onclick: reset }, t("sig.clear"));
  const el = h("div", { class: "field sig-field" },
    h("div", { class: "field-label" }, label || t("sig.pad")),
    h("div", { class: "sig-box" }, canvas, hint), clearBtn, dirty);
  reset();
  el.isEmpty = () => strokes < 3;
  el.store = async () => {
    if (el.isEmpty()) return null;
    const blob = await new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("encode"))), "image/png"));
    const sha = await sha256Hex(blob);
    await db.putBlob({ sha256: sha, blob, mime: "image/png", size: blob.size });
    remember(sha, blob);
    return sha;
  };
  return el;
}
