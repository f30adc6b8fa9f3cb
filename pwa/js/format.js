// Times and small values as people read them: 刚刚, 5分钟前, 3天前; 2026-11-20 09:30 (device time).

import { t } from "./i18n.js";
import * as model from "./model.js";

const pad = (n) => String(n).padStart(2, "0");

function parse(v) {
  if (!v) return null;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** "Now" as the server sees it (the device clock corrected by the offset learnt at the last sync). */
export function nowMs() {
  return Date.parse(model.now());
}

export function absTime(v) {
  const d = parse(v);
  if (!d) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function absDate(v) {
  if (typeof v === "string" && /^\d{4}-\d{2}-\d{2}$/.test(v)) return v;
  const d = parse(v);
  if (!d) return "";
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** 刚刚 / 5分钟前 / 3小时前 / 3天前 / 2个月前 / 1年前; a time in the future is shown absolutely. */
export function relTime(v, now = nowMs()) {
  const d = parse(v);
  if (!d) return "";
  const s = Math.floor((now - d.getTime()) / 1000);
  if (s < -120) return absTime(d);
  if (s < 60) return t("time.just_now");
  const m = Math.floor(s / 60);
  if (m < 60) return t("time.minutes_ago", { n: m });
  const hr = Math.floor(m / 60);
  if (hr < 24) return t("time.hours_ago", { n: hr });
  const days = Math.floor(hr / 24);
  if (days < 31) return t("time.days_ago", { n: days });
  const months = Math.floor(days / 30.44);
  if (months < 12) return t("time.months_ago", { n: months });
  return t("time.years_ago", { n: Math.floor(days / 365.25) });
}

export function daysSince(v, now = nowMs()) {
  const d = parse(v);
  if (!d) return Infinity;
  return (now - d.getTime()) / 86400000;
}

/** The value for an <input type=datetime-local> in device time. */
export function toLocalInput(v) {
  const d = parse(v) || new Date();
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** An ISO 8601 time with the device's offset, e.g. 2026-11-20T09:30:00+08:00. */
export function isoWithOffset(d) {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  const a = Math.abs(off);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

export function fromLocalInput(value) {
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? null : isoWithOffset(d);
}

export function today() {
  return absDate(new Date(nowMs()));
}

export function bytes(n) {
  if (n === undefined || n === null) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GB`;
}
