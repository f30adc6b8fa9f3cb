// Form pieces with behaviour of their own: the photo picker (camera → resize → hash) and the
// "record location" button. Both keep their state until the form is saved.

import { h, clear, append } from "./dom.js";
import { t } from "./i18n.js";
import { icon } from "./icons.js";
import { processPhoto } from "./photo.js";
import { photoStrip, remember } from "./ui.js";
import * as db from "./db.js";

export const MAX_PHOTOS = 20;

/**
 * The photo picker. `initial` is a list of hashes already on the record (or prefilled).
 * `.shas()` lists the photos to save; `.store()` writes the new ones to IndexedDB (call it before
 * the record is saved, so a record never refers to a photo the phone does not hold).
 */
export function photoField(initial = []) {
  const items = initial.map((sha) => ({ sha256: sha, stored: true }));
  let busy = 0;
  const strip = h("div", { class: "photo-strip" });
  const status = h("p", { class: "field-hint", role: "status", "aria-live": "polite" });
  const inputEl = h("input", {
    type: "file", accept: "image/*", capture: "environment", multiple: true, class: "visually-hidden",
    "data-testid": "photo-input",
  });
  const label = h("label", { class: "btn btn-secondary btn-block" }, icon("camera"), t("photo.take"), inputEl);

  function render() {
    clear(strip);
    append(strip, photoStrip(items.map((i) => i.sha256), {
      onRemove: (sha) => {
        const i = items.findIndex((x) => x.sha256 === sha);
        if (i >= 0) items.splice(i, 1);
        render();
      },
    }));
    status.textContent = busy ? t("photo.processing", { n: busy })
      : items.length ? t("photo.count", { n: items.length, max: MAX_PHOTOS }) : t("photo.none");
  }

  inputEl.addEventListener("change", async () => {
    const files = [...inputEl.files];
    inputEl.value = "";
    for (const file of files) {
      if (items.length + busy >= MAX_PHOTOS) {
        status.textContent = t("photo.too_many", { max: MAX_PHOTOS });
        break;
      }
      busy += 1;
      render();
      try {
        const p = await processPhoto(file);
        if (!items.some((x) => x.sha256 === p.sha256)) {
          remember(p.sha256, p.blob);
          items.push({ ...p, stored: false });
        }
      } catch (e) {
        console.warn("photo", e);
        busy -= 1;
        render();
        status.textContent = t("photo.failed");
        continue;
      }
      busy -= 1;
      render();
    }
  });

  render();
  const el = h("div", { class: "field" }, h("div", { class: "field-label" }, t("photo.label")), label, status, strip);
  el.shas = () => items.map((i) => i.sha256);
  el.busy = () => busy > 0;
  el.store = async () => {
    for (const i of items) {
      if (i.stored) continue;
      await db.putBlob({ sha256: i.sha256, blob: i.blob, mime: i.mime, size: i.size });
      i.stored = true;
    }
    return el.shas();
  };
  return el;
}

/** "记录位置": one tap asks the phone for a fix; `.value` is {lat, lng, accuracy} or null. */
export function gpsField(initial = null, { label } = {}) {
  let value = initial && typeof initial.lat === "number" ? { ...initial } : null;
  const status = h("p", { class: "field-hint", role: "status", "aria-live": "polite" });
  const clearBtn = h("button", { type: "button", class: "btn btn-link", hidden: !value }, t("gps.clear"));
  const btn = h("button", { type: "button", class: "btn btn-secondary btn-block" }, icon("pin"), t("gps.record"));

  function show() {
    if (value) {
      status.textContent = t("gps.recorded", {
        lat: value.lat.toFixed(5), lng: value.lng.toFixed(5),
        acc: value.accuracy !== undefined && value.accuracy !== null ? Math.round(value.accuracy) : "?",
      });
    } else {
      status.textContent = t("gps.optional");
    }
    clearBtn.hidden = !value;
  }

  btn.addEventListener("click", () => {
    if (!("geolocation" in navigator)) {
      status.textContent = t("gps.unsupported");
      return;
    }
    btn.disabled = true;
    status.textContent = t("gps.locating");
    navigator.geolocation.getCurrentPosition((pos) => {
      btn.disabled = false;
      const c = pos.coords;
      value = { lat: +c.latitude.toFixed(6), lng: +c.longitude.toFixed(6), accuracy: Math.min(100000, Math.round(c.accuracy || 0)) };
      show();
    }, (err) => {
      btn.disabled = false;
      status.textContent = err && err.code === 1 ? t("gps.denied") : err && err.code === 3 ? t("gps.timeout") : t("gps.failed");
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  });
  clearBtn.addEventListener("click", () => { value = null; show(); });
  show();
  const el = h("div", { class: "field" }, h("div", { class: "field-label" }, label || t("gps.label")), btn, status, clearBtn);
  Object.defineProperty(el, "value", { get: () => value });
  return el;
}
