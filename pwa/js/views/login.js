// Sign in (online once): username, password, the phone's name. Then the app works offline.

import { h } from "../dom.js";
import { t } from "../i18n.js";
import * as api from "../api.js";
import * as db from "../db.js";
import * as model from "../model.js";
import { field, input } from "../ui.js";

/** "Android 手机 · Chrome" from the user agent: enough for the admin screen to tell phones apart. */
export function defaultDeviceName() {
  const ua = navigator.userAgent || "";
  let os = /Android/i.test(ua) ? "Android" : /iPhone|iPad|iPod/i.test(ua) ? "iPhone" : /Windows/i.test(ua) ? "Windows"
    : /Mac OS X/i.test(ua) ? "Mac" : /Linux/i.test(ua) ? "Linux" : "";
  const model = (ua.match(/Android [\d.]+; ([^;)]+)/) || [])[1];
  if (model && !/^K$|wv/i.test(model.trim())) os = model.trim();
  const browser = /EdgA?\//.test(ua) ? "Edge" : /MicroMessenger/i.test(ua) ? "WeChat" : /HeadlessChrome/.test(ua) ? "Chrome"
    : /Chrome\//.test(ua) ? "Chrome" : /Firefox\//.test(ua) ? "Firefox" : /Safari\//.test(ua) ? "Safari" : "";
  return [os, browser].filter(Boolean).join(" · ").slice(0, 60) || t("login.device_default");
}

// Why the server refused a new password (details.reason of invalid_request), as the user reads it.
const PASSWORD_REASONS = ["too_short", "too_long", "control", "username", "repeated", "common", "reused"];

function message(e) {
  if (!navigator.onLine || (e instanceof api.ApiError && e.status === 0)) return t("login.offline");
  if (e instanceof api.ApiError) {
    if (e.code === "invalid_credentials") return t("login.bad_password");
    if (e.code === "password_change_required") return t("login.change_required");
    if (e.code === "invalid_request" && e.details && PASSWORD_REASONS.includes(e.details.reason)) {
      return t("login.pw_" + e.details.reason);
    }
    if (e.code === "rate_limited") {
      const wait = Number(e.details.retry_after || (e.headers && e.headers.get("Retry-After")) || 60);
      return wait >= 120 ? t("login.rate_limited_min", { n: Math.ceil(wait / 60) }) : t("login.rate_limited", { n: wait });
    }
    if (e.status >= 500) return t("login.server_error");
  }
  return t("login.failed", { message: e.message || String(e) });
}

export default {
  title: () => t("login.title"),
  async render(ctx) {
    const old = await db.getMeta("session").catch(() => null);
    const username = input({ name: "username", value: old && old.user ? old.user.username : "", autocomplete: "username", autocapitalize: "none", spellcheck: "false", required: true });
    const password = input({ name: "password", type: "password", autocomplete: "current-password", required: true });
    const device = input({ name: "device_name", value: defaultDeviceName(), maxlength: 60 });
    const error = h("p", { class: "form-error", role: "alert", hidden: !ctx.revokedMessage }, ctx.revokedMessage || "");
    const submit = h("button", { type: "submit", class: "btn btn-primary btn-block btn-big" }, t("login.submit"));
    // A one-time password (an initial one, an administrator's reset): added once the server asks
    // (not before: a hidden "新密码" field would be one more field labelled 密码 on the screen).
    const newPassword = input({ name: "new_password", type: "password", autocomplete: "new-password", minlength: 8, maxlength: 128 });
    const newPassword2 = input({ name: "new_password2", type: "password", autocomplete: "new-password", minlength: 8, maxlength: 128 });
    const newFields = h("div", { class: "new-password" },
      field(t("login.new_password"), newPassword, { required: true, hint: t("login.new_password_hint") }),
      field(t("login.new_password2"), newPassword2, { required: true }));

    const form = h("form", { class: "form login-form", novalidate: true },
      error,
      field(t("login.username"), username, { required: true }),
      field(t("login.password"), password, { required: true }),
      field(t("login.device"), device, { hint: t("login.device_hint") }),
      submit,
      h("p", { class: "muted small" }, t("login.first_time_online")));

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      error.hidden = true;
      if (!username.value.trim() || !password.value) {
        error.textContent = t("login.missing");
        error.hidden = false;
        return;
      }
      const changing = newFields.isConnected;
      if (changing && (!newPassword.value || newPassword.value !== newPassword2.value)) {
        error.textContent = t(newPassword.value ? "login.new_password_differs" : "login.new_password_missing");
        error.hidden = false;
        return;
      }
      if (!navigator.onLine) {
        error.textContent = t("login.offline");
        error.hidden = false;
        return;
      }
      submit.disabled = true;
      submit.textContent = t("login.signing_in");
      try {
        // signing in again on a phone that still holds data (the token stopped working): the same
        // user keeps the unsent edits; another user must not inherit them
        const old = await db.getMeta("session").catch(() => null);
        const previous = (old && old.device_id) || await db.getMeta("previous_device_id").catch(() => null);
        const res = await api.login(username.value.trim(), password.value, device.value.trim() || defaultDeviceName(),
          previous || undefined, changing ? newPassword.value : undefined);
        if (old && old.user && old.user.id !== res.user.id) await model.signOut({ force: true });
        const offset = Date.parse(res.server_time) - Date.now();
        await ctx.signedIn({ token: res.token, device_id: res.device_id, user: res.user,
          server_offset_ms: Number.isFinite(offset) ? offset : 0 });
      } catch (err) {
        error.textContent = message(err);
        error.hidden = false;
        submit.disabled = false;
        const mustChange = err instanceof api.ApiError && (err.code === "password_change_required"
          || (changing && err.code === "invalid_request"));
        if (mustChange) {
          if (!changing) password.closest(".field").after(newFields);
          submit.textContent = t("login.submit_new_password");
          newPassword.select();
          newPassword.focus();
        } else {
          submit.textContent = t(changing ? "login.submit_new_password" : "login.submit");
          password.select();
        }
      }
    });

    return h("div", { class: "login" },
      h("div", { class: "login-head" },
        h("img", { src: "/icons/icon-192.png", alt: "", width: 72, height: 72, class: "login-logo" }),
        h("p", { class: "login-app" }, t("app.name")),
        h("p", { class: "muted" }, t("login.tagline"))),
      form);
  },
};
