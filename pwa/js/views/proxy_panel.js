// The proxy part of a matter's screen (代办, docs/proxy.md): the resident's delegation (委托) with a
// signature drawn on the screen or a witness and a photo; the materials checklist with where each
// piece is (收取 → 交窗口 → 取回 → 归还); the agent's step buttons; the deadline clock. All offline:
// every button writes a matter event to the outbox.

import { h, clear, append } from "../dom.js";
import { t, getLang } from "../i18n.js";
import * as model from "../model.js";
import * as db from "../db.js";
import { absTime, absDate } from "../format.js";
import { userName } from "../lookups.js";
import { section, button, textarea, input, select, segmented, field, chips } from "../ui.js";
import { photoURL, showPhoto } from "../ui.js";
import { photoField } from "../fields.js";
import { signaturePad } from "../signature.js";
import * as px from "../proxy.js";

function matName(mat) {
  if (!mat) return "";
  return getLang() === "en" ? mat.name_en || mat.name_zh || mat.name || mat.code : mat.name_zh || mat.name_en || mat.name || mat.code;
}

/** A signature (or witness photo) by hash: the picture, or "uploading" — never "missing". */
export function signatureView(sha, { kind = "sig" } = {}) {
  const cell = h("div", { class: "sig-view", dataset: { testid: "signature-view", sha } }, h("span", { class: "muted small" }, t("photo.loading")));
  (async () => {
    const local = await db.getBlob(sha).catch(() => null);
    const url = await photoURL(sha).catch(() => null);
    clear(cell);
    if (url) {
      append(cell, h("button", { type: "button", class: "photo-open", onclick: () => showPhoto(url), "aria-label": t(kind + ".view") },
        h("img", { src: url, alt: t(kind + ".view"), class: "sig-img" })));
      if (local && !local.uploaded) append(cell, h("span", { class: "tag", dataset: { testid: "signature-state" } }, t("sig.on_phone")));
    } else {
      cell.dataset.state = "uploading";
      append(cell, h("span", { class: "tag tag-warm", dataset: { testid: "signature-state" } }, t("sig.uploading")));
    }
  })();
  return cell;
}

function witnessLine(d) {
  if (!d || !d.witness) return null;
  return h("p", { class: "small" }, t("deleg.witnessed", { name: d.witness.name, relation: d.witness.relation || "" }));
}

function addDays(days) {
  return px.localDate(new Date(Date.now() + days * 86400000).toISOString());
}

/** The signature-or-witness part of a form. `.collect()` → {data, attachments} or null (an error shown). */
function signOrWitness({ sigLabel }) {
  let mode = "sign";
  const pad = signaturePad({ label: sigLabel });
  const wName = input({ maxlength: 50, name: "witness_name" });
  const wRel = input({ maxlength: 30, name: "witness_relation", placeholder: t("deleg.relation_placeholder") });
  const wPhoto = photoField([]);
  const witnessBox = h("div", { hidden: true }, field(t("deleg.witness_name"), wName), field(t("deleg.witness_relation"), wRel), wPhoto);
  const err = h("p", { class: "field-error", role: "alert", hidden: true });
  const seg = segmented([["sign", t("deleg.mode_sign")], ["witness", t("deleg.mode_witness")]], mode, (v) => {
    mode = v;
    pad.hidden = v !== "sign";
    witnessBox.hidden = v !== "witness";
  });
  const el = h("div", null, seg, pad, witnessBox, err);
  el.collect = async () => {
    err.hidden = true;
    if (mode === "sign") {
      if (pad.isEmpty()) { err.textContent = t("sig.required"); err.hidden = false; return null; }
      const sha = await pad.store();
      return { data: { signature: sha }, attachments: [sha] };
    }
    if (!wName.value.trim()) { err.textContent = t("deleg.witness_required"); err.hidden = false; return null; }
    if (wPhoto.busy()) { err.textContent = t("photo.wait"); err.hidden = false; return null; }
    const shas = await wPhoto.store();
    if (!shas.length) { err.textContent = t("deleg.photo_required"); err.hidden = false; return null; }
    const witness = { name: wName.value.trim() };
    if (wRel.value.trim()) witness.relation = wRel.value.trim();
    return { data: { witness, photo: shas[0] }, attachments: [shas[0]] };
  };
  return el;
}

function residentSelect(residents, value) {
  return select(residents.map((r) => [r.id, r.relation ? `${r.name}（${r.relation}）` : r.name]), value || (residents[0] && residents[0].id) || "", { name: "for_resident_id" });
}

export async function proxyPanel(ctx, m, events, l, residents) {
  const me = ctx.me;
  const cat = m.category ? l.categories.get(m.category) : null;
  const materials = (cat && Array.isArray(cat.materials)) ? cat.materials : [];
  const status = m.status || "submitted";
  const active = px.ACTIVE(status);
  const iAmAgent = me.role === "proxy_agent" && m.assignee_id === me.id;
  const valid = px.validDelegations(events, m.assignee_id);
  const mineValid = iAmAgent && px.validDelegations(events, me.id).length > 0;
  const mayHandle = active && (me.role !== "proxy_agent" || mineValid);
  const nameOf = (rid) => { const r = residents.find((x) => x.id === rid); return r ? r.name : t("common.unknown_user"); };
  const out = [];

  // --- the deadline clock ---
  const held = px.heldDeadline(m);
  const clock = [];
  if (status === "waiting_materials") clock.push(h("span", { class: "tag tag-warm", dataset: { testid: "clock-paused" } }, t("proxy.clock_paused")));
  if (held) clock.push(h("span", { class: px.isOverdueProxy(m) ? "overdue-chip" : "tag" }, t("proxy.deadline_held", { date: absDate(held) })));
  if (m.paused_workdays) clock.push(h("span", { class: "tag", dataset: { testid: "paused-days" } }, t("proxy.paused_days", { n: m.paused_workdays })));

  // --- delegation (委托) ---
  const delegations = events.filter((e) => e.kind === "delegation");
  const delegItems = delegations.map((e) => {
    const d = e.data || {};
    const ok = d.until >= px.localDate();
    return h("li", { class: "deleg", dataset: { testid: "delegation" } },
      h("div", { class: "row-title" },
        h("strong", null, t("deleg.line", { who: nameOf(e.for_resident_id), agent: userName(l, e.for_user_id, me), until: absDate(d.until) })),
        h("span", { class: ok ? "tag tag-ok" : "tag tag-warm" }, ok ? t("deleg.valid") : t("deleg.expired")),
        e._pending ? h("span", { class: "pending" }, t("common.pending")) : null),
      witnessLine(d),
      d.signature ? signatureView(d.signature) : null,
      d.photo ? signatureView(d.photo, { kind: "photo" }) : null,
      h("div", { class: "muted small" }, t("deleg.recorded_by", { who: userName(l, e.actor_id || me.id, me) }), e.at ? ` · ${absTime(e.at)}` : ""));
  });
  const delegBox = h("div");
  function openDelegation() {
    clear(delegBox);
    const who = residentSelect(residents, m.resident_id);
    const until = input({ type: "date", name: "until", value: addDays(90) });
    const sow = signOrWitness({ sigLabel: t("deleg.sign_here") });
    append(delegBox, h("div", { class: "card move-form", dataset: { testid: "delegation-form" } },
      h("p", null, t("deleg.explain", { agent: userName(l, m.assignee_id, me) })),
      field(t("deleg.authoriser"), who), field(t("deleg.until"), until), sow,
      h("div", { class: "form-actions inline" },
        button(t("form.cancel"), () => clear(delegBox), "btn btn-secondary"),
        button(t("deleg.save"), async () => {
          if (!who.value || !until.value) return;
          const s = await sow.collect();
          if (!s) return;
          await model.addEvent(m.id, "delegation", { for_resident_id: who.value, for_user_id: m.assignee_id,
            data: { until: until.value, ...s.data }, attachments: s.attachments });
          clear(delegBox);
          ctx.toast(t("common.saved_pending"));
        }, "btn btn-primary", { dataset: { testid: "delegation-save" } }))));
  }
  const needDeleg = active && m.assignee_id && !valid.length;
  out.push(section(t("deleg.title"),
    clock.length ? h("div", { class: "row-meta" }, ...clock) : null,
    needDeleg ? h("p", { class: "banner banner-warn inline", dataset: { testid: "need-delegation" } }, t(iAmAgent ? "deleg.needed_agent" : "deleg.needed")) : null,
    delegItems.length ? h("ul", { class: "events" }, delegItems) : null,
    active && m.assignee_id && me.role !== "staff" && me.role !== "admin" || needDeleg
      ? button(delegations.length ? t("deleg.record_new") : t("deleg.record"), openDelegation, needDeleg ? "btn btn-primary btn-block" : "btn btn-secondary btn-block", { dataset: { testid: "delegation-open" } })
      : null,
    delegBox));

  // --- materials checklist and custody ---
  const trails = px.custody(events);
  const extra = [...trails.values()].filter((v) => !materials.some((x) => x.code === v.code));
  const rows = [...materials.map((mat) => ({ code: mat.code, mat, original: !!mat.original })),
    ...extra.map((v) => ({ code: v.code, mat: { code: v.code, name: v.name }, original: v.form === "original" }))];
  const who = m.resident_id || (residents[0] && residents[0].id);
  async function custodyEvent(action, items) {
    await model.addEvent(m.id, "custody", { for_resident_id: who, data: { action, items } });
    ctx.toast(t("common.saved_pending"));
  }
  const matRows = rows.map((row) => {
    const st = px.itemState(trails, row.code);
    const form = st ? st.form : row.original ? "original" : "copy";
    const item = [{ code: row.code, form, ...(row.mat.name && !materials.some((x) => x.code === row.code) ? { name: row.mat.name } : {}) }];
    const place = st ? st.place : "none";
    const acts = [];
    if (mayHandle && who) {
      if (place === "none") acts.push(["received", "custody.do_received"]);
      if (place === "agent") acts.push(["handed_to_window", "custody.do_handed_to_window"], ["returned", "custody.do_returned"]);
      if (place === "window") acts.push(["back_from_window", "custody.do_back_from_window"], ["kept_by_window", "custody.do_kept_by_window"]);
    }
    return h("li", { class: ["mat", "mat-" + place], dataset: { testid: "material", code: row.code, place } },
      h("div", { class: "row-title" }, h("strong", null, matName(row.mat)),
        h("span", { class: form === "original" ? "tag tag-warm" : "tag" }, t("custody.form_" + form)),
        h("span", { class: "tag place-" + place, dataset: { testid: "material-place" } }, t("custody.place_" + place))),
      st ? h("div", { class: "muted small" }, st.trail.map((s) => `${t("custody." + s.action)} ${s.at ? absTime(s.at) : t("common.pending")}`).join(" → ")) : null,
      acts.length ? h("div", { class: "mat-actions" }, acts.map(([a, key]) =>
        button(t(key), () => custodyEvent(a, item), "btn btn-small btn-secondary", { dataset: { testid: `custody-${a}-${row.code}` } }))) : null);
  });
  const notYet = rows.filter((r) => !px.itemState(trails, r.code));
  const missingOriginals = px.unaccounted(events);
  out.push(section(t("proxy.materials"),
    rows.length ? null : h("p", { class: "muted" }, t("proxy.no_checklist")),
    missingOriginals.length && active ? h("p", { class: "banner banner-warn inline", dataset: { testid: "originals-out" } },
      t("proxy.originals_out", { items: missingOriginals.map((v) => matName(materials.find((x) => x.code === v.code) || v)).join("、") })) : null,
    h("ul", { class: "materials-check" }, matRows),
    mayHandle && who && notYet.length > 1 ? button(t("custody.receive_all"), () => custodyEvent("received",
      notYet.map((r) => ({ code: r.code, form: r.original ? "original" : "copy" }))), "btn btn-secondary btn-block", { dataset: { testid: "custody-receive-all" } }) : null));

  // --- the agent's steps ---
  if (iAmAgent && active) {
    const box = h("div", { class: "move-box" });
    const steps = px.nextSteps(m, events);
    function stepFields(step) {
      const to = px.STEPS[step];
      if (!to || (step === "materials_complete" && status !== "waiting_materials")) return {};
      return { from: status, to };
    }
    function openStep(step) {
      clear(box);
      const note = textarea({ rows: 2, maxlength: 4000, placeholder: t("step_form.note_placeholder"), "aria-label": t("matter_detail.move_note") });
      const parts = [];
      let collect = async () => ({});
      if (step === "waiting_materials") {
        const missing = new Set();
        parts.push(h("p", { class: "field-label" }, t("step_form.missing")),
          chips(notYet.map((r) => r.code), missing, (code) => matName(materials.find((x) => x.code === code) || { code })));
        collect = async () => ({ data: missing.size ? { missing: [...missing] } : null });
      } else if (step === "submitted_to_window") {
        const win = input({ maxlength: 100, name: "window", value: t("step_form.window_default") });
        const receipt = input({ maxlength: 60, name: "receipt_no" });
        parts.push(field(t("step_form.window"), win), field(t("step_form.receipt"), receipt));
        collect = async () => ({ data: { window: win.value.trim() || null, ...(receipt.value.trim() ? { receipt_no: receipt.value.trim() } : {}) } });
      } else if (step === "result_obtained") {
        const docs = photoField([]);
        parts.push(docs);
        collect = async () => {
          if (!note.value.trim()) { ctx.toast(t("step_form.result_required"), { kind: "error" }); note.focus(); return null; }
          if (docs.busy()) { ctx.toast(t("photo.wait"), { kind: "error" }); return null; }
          return { attachments: await docs.store() };
        };
      } else if (step === "delivered") {
        if (missingOriginals.length) {
          append(box, h("p", { class: "banner banner-warn inline" }, t("step_form.return_first")));
          return;
        }
        const res = residentSelect(residents, m.resident_id);
        const sow = signOrWitness({ sigLabel: t("step_form.sign_receipt") });
        parts.push(field(t("step_form.received_by"), res), sow);
        collect = async () => {
          const s = await sow.collect();
          if (!s) return null;
          return { for_resident_id: res.value, data: s.data, attachments: s.attachments };
        };
      } else if (step === "escalated") {
        let level = "town";
        parts.push(segmented([["town", t("level.town")], ["county", t("level.county")]], level, (v) => { level = v; }));
        collect = async () => ({ data: { level } });
      }
      append(box, h("div", { class: "card move-form", dataset: { testid: "step-form" } },
        h("p", null, h("strong", null, t("step." + step))), ...parts, note,
        h("div", { class: "form-actions inline" },
          button(t("form.cancel"), () => clear(box), "btn btn-secondary"),
          button(t("step_form.save"), async () => {
            const more = await collect();
            if (!more) return;
            const fields = { step, note: note.value.trim() || null, ...stepFields(step), ...more };
            if (fields.data === null) delete fields.data;
            await model.addEvent(m.id, "step", fields);
            note.defaultValue = note.value;
            clear(box);
            ctx.toast(t("common.saved_pending"));
          }, "btn btn-primary", { dataset: { testid: "step-save" } }))));
    }
    out.push(section(t("proxy.steps"),
      !mineValid ? h("p", { class: "muted small" }, t("deleg.needed_agent")) : null,
      h("div", { class: "actions-grid" }, steps.map((s) => button(t("step." + s), () => openStep(s), "btn btn-primary",
        { disabled: !mineValid, dataset: { testid: "step-" + s } }))),
      box));
  }
  return out;
}
