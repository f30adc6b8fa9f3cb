// Helpers shared by the edit forms: value cleaning, the same checks the server makes (so the
// worker hears about a bad phone number now, not after the next sync), tags, the save bar.

import { h, clear, append } from "./dom.js";
import { t } from "./i18n.js";
import { chips } from "./ui.js";

// sync/schema.py PHONE_RE and ID_NUMBER_RE
export const PHONE_RE = /^[0-9+()\- ]{3,30}$/;
export const ID_NUMBER_RE = /^(\d{17}[\dXx]|\d{15})$/;

/** Trimmed single-line text, or null when empty. */
export function clean(s) {
  const v = String(s ?? "").replace(/[\r\n]+/g, " ").trim();
  return v ? v : null;
}

export function applyDelta(list, delta) {
  if (Array.isArray(delta)) return [...delta];
  const out = new Set(list || []);
  for (const x of (delta && delta.add) || []) out.add(x);
  for (const x of (delta && delta.remove) || []) out.delete(x);
  return [...out].sort();
}

/** {add, remove} between the tags shown and the tags chosen; null when nothing changed. */
export function tagDelta(before, selected) {
  const b = new Set(before || []);
  const add = [...selected].filter((x) => !b.has(x));
  const remove = [...b].filter((x) => !selected.has(x));
  return add.length || remove.length ? { add, remove } : null;
}

/** Chips for the known tags plus any others the record has, and a box to add a new one. */
export function tagEditor(known, initial, labelFn) {
  const selected = new Set(initial || []);
  const values = [...known, ...[...selected].filter((x) => !known.includes(x))];
  const box = h("div", { class: "tag-editor" });
  const custom = h("input", { type: "text", class: "input", maxlength: 20, placeholder: t("tags.custom_placeholder"), "aria-label": t("tags.custom_label") });
  const addBtn = h("button", { type: "button", class: "btn btn-secondary" }, t("tags.add"));
  function render() {
    clear(box);
    append(box, chips(values, selected, labelFn), h("div", { class: "inline-add" }, custom, addBtn));
  }
  addBtn.addEventListener("click", () => {
    const v = custom.value.trim();
    if (!v) return;
    if (!values.includes(v)) values.push(v);
    selected.add(v);
    custom.value = "";
    render();
  });
  custom.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); addBtn.click(); } });
  render();
  box.selected = selected;
  return box;
}

/**
 * The save bar at the bottom of a form. `save()` returns a route to go to after saving, an object
 * {nothing: true, to} when nothing changed, or null when the form has errors to fix.
 */
export function formActions(ctx, save, { cancelTo, saveLabel } = {}) {
  const saveBtn = h("button", { type: "submit", class: "btn btn-primary btn-big", dataset: { testid: "save" } }, saveLabel || t("form.save"));
  const cancel = h("button", { type: "button", class: "btn btn-secondary btn-big", onclick: () => ctx.back(cancelTo) }, t("form.cancel"));
  const bar = h("div", { class: "form-actions" }, cancel, saveBtn);
  let busy = false;
  async function run(e) {
    if (e) e.preventDefault();
    if (busy) return;
    busy = true;
    saveBtn.disabled = true;
    try {
      const to = await save();
      if (to === null || to === undefined) {
        ctx.toast(t("form.fix_errors"), { kind: "error" });
        const bad = document.querySelector("[aria-invalid='true']");
        if (bad) bad.focus();
        return;
      }
      // the edit is in the outbox now: mark the inputs clean so the screen may refresh
      for (const f of document.querySelectorAll("#app input, #app textarea")) f.defaultValue = f.value;
      if (typeof to === "object") {
        if (to.nothing) ctx.toast(t("form.nothing_changed"));
        if (to.to) ctx.navigate(to.to, { replace: true });
        return;
      }
      ctx.toast(t("common.saved_pending"));
      ctx.navigate(to, { replace: true });
    } catch (err) {
      console.error(err);
      ctx.toast(t("form.save_failed", { message: err.message || String(err) }), { kind: "error", ms: 6000 });
    } finally {
      busy = false;
      saveBtn.disabled = false;
    }
  }
  saveBtn.addEventListener("click", run);
  // Enter in a text box submits the form: route it through the same path
  queueMicrotask(() => { const form = bar.closest("form"); if (form) form.addEventListener("submit", run); });
  return bar;
}
