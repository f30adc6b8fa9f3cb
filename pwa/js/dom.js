// A tiny DOM builder. Text always goes in as text nodes, so a resident called
// `<img src=x onerror=alert(1)>` is shown as those characters and never parsed as HTML.
// There is deliberately no way to set innerHTML through it.

const PROPS = new Set(["value", "checked", "disabled", "selected", "hidden", "multiple", "open"]);

/**
 * h("button", {class: "btn", onclick: fn}, "保存", child, [more, children])
 * attrs: `class` (string or array, falsy entries dropped), `on<event>` (listener), `dataset`
 * (object), properties in PROPS set as properties, everything else via setAttribute.
 * Children: strings/numbers become text nodes; null, undefined and false are skipped; arrays flatten.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") {
        const cls = Array.isArray(v) ? v.filter(Boolean).join(" ") : v;
        if (cls) el.className = cls;
      } else if (k.startsWith("on") && typeof v === "function") {
        el.addEventListener(k.slice(2), v);
      } else if (k === "dataset") {
        for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
      } else if (k === "style") {
        throw new Error("inline styles are blocked by the CSP: use a class");
      } else if (PROPS.has(k)) {
        el[k] = v;
      } else {
        el.setAttribute(k, v === true ? "" : String(v));
      }
    }
  }
  append(el, ...children);
  return el;
}

/** append(el, child, [children], …): the same rules as h()'s children. */
export function append(el, ...children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, ...c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  return append(el, ...children);
}

/** A DocumentFragment of children, for returning several nodes from a helper. */
export function frag(...children) {
  return append(document.createDocumentFragment(), ...children);
}
