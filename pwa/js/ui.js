// Shared pieces of the screens: form fields, toggles, chips, status marks, photo thumbnails.
// Everything user-entered goes in as text (dom.h), never as markup.

import { h, clear, append } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import * as db from "./db.js";
import * as api from "./api.js";

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

/** A labelled field: label above, the control, an optional hint and an error line. */
export function field(label, control, { hint, required, id } = {}) {
  const cid = id || control.id || nextId("f");
  control.id = cid;
  const err = h("p", { class: "field-error", role: "alert", hidden: true });
  const wrap = h("div", { class: "field" },
    h("label", { for: cid, class: "field-label" }, label, required ? h("span", { class: "req" }, " *") : null),
    control,
    hint ? h("p", { class: "field-hint" }, hint) : null,
    err);
  wrap.setError = (msg) => {
    err.textContent = msg || "";
    err.hidden = !msg;
    control.classList.toggle("invalid", !!msg);
    if (msg) control.setAttribute("aria-invalid", "true");
    else control.removeAttribute("aria-invalid");
  };
  return wrap;
}

/** A group of controls with a visible legend (for toggles and segmented choices). */
export function group(label, ...children) {
  return h("fieldset", { class: "field group" }, h("legend", { class: "field-label" }, label), ...children);
}

export function input(attrs = {}) {
  const el = h("input", { type: "text", class: "input", autocomplete: "off", ...attrs });
  if (attrs.value !== undefined && attrs.value !== null) el.defaultValue = String(attrs.value);
  return el;
}

export function textarea(attrs = {}, value = "") {
  const el = h("textarea", { class: "input textarea", rows: 4, ...attrs });
  el.value = value || "";
  el.defaultValue = value || "";
  return el;
}

/** <select> from [[value, label], …]; value "" stands for null. */
export function select(options, value, attrs = {}) {
  const el = h("select", { class: "input select", ...attrs },
    options.map(([v, label]) => h("option", { value: v ?? "" }, label)));
  el.value = value ?? "";
  return el;
}

/** Big side-by-side choice buttons; `.value` reads the choice. */
export function segmented(options, value, onChange, { name } = {}) {
  let current = value;
  const buttons = options.map(([v, label, cls]) => h("button", {
    type: "button", class: ["seg", cls], "aria-pressed": String(v === current), dataset: { value: v ?? "" },
    onclick: () => {
      current = v;
      for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.value === (v ?? "")));
      if (onChange) onChange(v);
    },
  }, label));
  const el = h("div", { class: "segmented", role: "group", "aria-label": name || null }, buttons);
  Object.defineProperty(el, "value", { get: () => current });
  return el;
}

/** One big on/off toggle with a check mark. */
export function toggle(label, checked, onChange, { sub } = {}) {
  const b = h("button", { type: "button", class: "toggle", "aria-pressed": String(!!checked) },
    h("span", { class: "toggle-box" }, icon("check", "icon toggle-check")),
    h("span", { class: "toggle-text" }, label, sub ? h("small", null, sub) : null));
  b.addEventListener("click", () => {
    const on = b.getAttribute("aria-pressed") !== "true";
    b.setAttribute("aria-pressed", String(on));
    if (onChange) onChange(on);
  });
  Object.defineProperty(b, "checked", { get: () => b.getAttribute("aria-pressed") === "true" });
  return b;
}

/** Toggleable chips over a Set of values; labelFn turns a value into its label. */
export function chips(values, selected, labelFn, onToggle, { cls = "" } = {}) {
  return h("div", { class: ["chips", cls] }, values.map((v) => h("button", {
    type: "button", class: "chip", "aria-pressed": String(selected.has(v)),
    onclick: (e) => {
      if (selected.has(v)) selected.delete(v); else selected.add(v);
      e.currentTarget.setAttribute("aria-pressed", String(selected.has(v)));
      if (onToggle) onToggle(v, selected.has(v));
    },
  }, labelFn(v))));
}

export function tagList(values, labelFn, { priority } = {}) {
  if (!values || !values.length) return null;
  return h("span", { class: "tags" }, values.map((v) =>
    h("span", { class: ["tag", priority && priority.has(v) ? "tag-warm" : null] }, labelFn(v))));
}

export function pendingMark() {
  return h("span", { class: "pending", title: t("common.pending_hint") }, t("common.pending"));
}

export function statusChip(status) {
  return h("span", { class: ["status", "st-" + status] }, t("status." + status));
}

export function urgencyChip(urgency) {
  if (!urgency || urgency === "normal") return null;
  return h("span", { class: ["urgency", "urg-" + urgency] }, t("urgency." + urgency));
}

export function empty(text, ...more) {
  return h("div", { class: "empty" }, h("p", null, text), ...more);
}

export function section(title, ...children) {
  return h("section", { class: "section" }, title ? h("h2", { class: "section-title" }, title) : null, ...children);
}

export function card(...children) {
  return h("div", { class: "card" }, ...children);
}

/** Label / value rows of a record card; rows with an empty value are left out. */
export function facts(rows) {
  const kept = rows.filter(([, v]) => v !== null && v !== undefined && v !== "" && v !== false);
  if (!kept.length) return null;
  return h("dl", { class: "facts" }, kept.map(([k, v]) => h("div", { class: "fact" }, h("dt", null, k), h("dd", null, v))));
}

/** A button that asks for a second tap before acting (no modal dialogs to fight with on a phone). */
export function confirmButton(label, confirmLabel, onConfirm, cls = "btn btn-danger") {
  let armed = false;
  let timer = null;
  const b = h("button", { type: "button", class: cls }, label);
  b.addEventListener("click", async () => {
    if (!armed) {
      armed = true;
      b.textContent = confirmLabel;
      b.classList.add("armed");
      timer = setTimeout(() => { armed = false; b.textContent = label; b.classList.remove("armed"); }, 4000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    try { await onConfirm(); } finally { b.disabled = false; armed = false; b.textContent = label; b.classList.remove("armed"); }
  });
  return b;
}

export function button(label, onclick, cls = "btn", attrs = {}) {
  return h("button", { type: "button", class: cls, onclick, ...attrs }, label);
}

export function linkButton(label, href, cls = "btn", iconName) {
  return h("a", { href, class: cls, role: "button" }, iconName ? icon(iconName) : null, label);
}

// ---- photos ------------------------------------------------------------------------------

const urls = new Map();

/** An object URL for a photo: from this phone's store, else from the server when online. */
export async function photoURL(sha) {
  if (urls.has(sha)) return urls.get(sha);
  let blob = null;
  const local = await db.getBlob(sha).catch(() => null);
  if (local && local.blob) blob = local.blob;
  else if (navigator.onLine) blob = await api.blobGet(sha).catch(() => null);
  if (!blob) return null;
  const url = URL.createObjectURL(blob);
  urls.set(sha, url);
  return url;
}

export function showPhoto(url) {
  const overlay = h("div", { class: "lightbox", role: "dialog", "aria-label": t("photo.view") },
    h("img", { src: url, alt: t("photo.alt") }),
    h("button", { type: "button", class: "lightbox-close", "aria-label": t("common.close") }, icon("x")));
  overlay.addEventListener("click", () => overlay.remove());
  document.body.appendChild(overlay);
}

/** Thumbnails of photos by hash; each loads on its own (offline: a placeholder that says why). */
export function photoStrip(shas, { onRemove } = {}) {
  if (!shas || !shas.length) return null;
  return h("div", { class: "photos" }, shas.map((sha) => {
    const cell = h("div", { class: "photo" }, h("span", { class: "photo-wait" }, t("photo.loading")));
    photoURL(sha).then((url) => {
      clear(cell);
      if (!url) {
        append(cell, h("span", { class: "photo-wait" }, t("photo.unavailable")));
      } else {
        append(cell, h("button", { type: "button", class: "photo-open", "aria-label": t("photo.view"), onclick: () => showPhoto(url) },
          h("img", { src: url, alt: t("photo.alt"), loading: "lazy" })));
      }
      if (onRemove) append(cell, h("button", { type: "button", class: "photo-remove", "aria-label": t("photo.remove"), onclick: () => onRemove(sha) }, icon("x")));
    });
    return cell;
  }));
}

export function remember(sha, blob) {
  if (!urls.has(sha)) urls.set(sha, URL.createObjectURL(blob));
}
