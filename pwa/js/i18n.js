// Every string the app shows goes through t(key, params). One message table per language;
// both tables have exactly the same keys (checked by tests/test_pwa_shell.py).

import zh from "./messages/zh-CN.js";
import en from "./messages/en.js";

const TABLES = { "zh-CN": zh, en };
export const LANGS = [["zh-CN", "中文"], ["en", "English"]];
export const DEFAULT_LANG = "zh-CN";

let lang = DEFAULT_LANG;
const missing = new Set();

export function setLang(l) {
  lang = TABLES[l] ? l : DEFAULT_LANG;
  if (typeof document !== "undefined") document.documentElement.lang = lang;
  return lang;
}

export function getLang() {
  return lang;
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(TABLES[lang], key);
}

/** t("households.summary", {n: 3, overdue: 1}). A missing key shows as the key itself and is recorded. */
export function t(key, params) {
  let s = TABLES[lang][key];
  if (s === undefined) {
    missing.add(lang + ":" + key);
    s = key;
  }
  if (params) s = s.replace(/\{(\w+)\}/g, (m, name) => (params[name] === undefined ? m : String(params[name])));
  return s;
}

/** Keys asked for that the current table lacks (the e2e string walk reads this). */
export function missingKeys() {
  return [...missing];
}

if (typeof window !== "undefined") window.__gridbookMissingKeys = missingKeys;
