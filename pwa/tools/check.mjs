// Checks the app shell (node pwa/tools/check.mjs; exit status 1 on a problem):
//  - both message tables have exactly the same keys, and every key the code asks for exists;
//  - the service worker's SHELL lists every file of the app, and nothing that is not there;
//  - prints the shell size: the sum of the gzipped sizes of the precached files.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const PWA = join(dirname(fileURLToPath(import.meta.url)), "..");
let problems = 0;
const fail = (msg) => { problems++; console.error("✗ " + msg); };

const zh = (await import(join(PWA, "js/messages/zh-CN.js"))).default;
const en = (await import(join(PWA, "js/messages/en.js"))).default;

// 1. key parity
for (const k of Object.keys(zh)) if (!(k in en)) fail(`en.js lacks ${k}`);
for (const k of Object.keys(en)) if (!(k in zh)) fail(`zh-CN.js lacks ${k}`);
for (const [name, table] of [["zh-CN", zh], ["en", en]]) {
  for (const [k, v] of Object.entries(table)) if (typeof v !== "string" || !v.trim()) fail(`${name}: ${k} is empty`);
}
// placeholders must agree between languages
for (const k of Object.keys(zh)) {
  if (!(k in en)) continue;
  const ph = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort().join(",");
  if (ph(zh[k]) !== ph(en[k])) fail(`placeholders differ for ${k}: zh {${ph(zh[k])}} en {${ph(en[k])}}`);
}

// 2. keys used in the code
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}
const files = walk(PWA).filter((p) => !relative(PWA, p).startsWith("tools"));
const jsFiles = files.filter((p) => p.endsWith(".js") && !p.includes("/messages/"));
const used = new Set();
const literal = /\bt\(\s*"([a-z0-9_.]+)"/g;
const loose = /"((?:conflicts|nav|rating|op)\.[a-z0-9_]+)"/g;
for (const f of jsFiles) {
  const src = readFileSync(f, "utf8");
  for (const m of src.matchAll(literal)) if (!/[._]$/.test(m[1])) used.add(m[1]);
  for (const m of src.matchAll(loose)) if (!/[._]$/.test(m[1])) used.add(m[1]);
}
// families looked up with a computed suffix: every value they can take
const schema = readFileSync(join(PWA, "..", "sync", "schema.py"), "utf8");
const tuple = (name) => {
  const m = schema.match(new RegExp("^" + name + String.raw` = \(([^)]*)\)`, "m"));
  return m ? [...m[1].matchAll(/"(\w+)"/g)].map((x) => x[1]) : [];
};
const families = {
  status: tuple("MATTER_STATUSES"), move: tuple("MATTER_STATUSES"), urgency: tuple("URGENCIES"),
  channel: tuple("CHANNELS"), level: tuple("LEVELS"), event: tuple("EVENT_KINDS"), role: tuple("ROLES"),
  checklist: tuple("CHECKLIST_ITEMS").flatMap((k) => [k, k + "_hint"]),
  handling: ["direct", "proxy"], gender: ["male", "female", "unknown"],
  residence: ["resident", "away", "moved_out", "deceased"], resolution: ["current", "incoming", "value"],
  coll: ["households", "residents", "visits", "matters", "matter_events", "attachments", "conflicts", "areas", "categories", "users"],
  custody: ["received", "returned"], rating: ["2", "3", "4", "5"],
  "conflicts.why": ["field", "delete", "update_deleted", "transition"],
};
const tags = readFileSync(join(PWA, "js/tags.js"), "utf8");
families.tag = [...tags.match(/const CODES = \{([\s\S]*?)\};/)[1].matchAll(/: "(\w+)"/g)].map((m) => m[1]);
for (const [fam, values] of Object.entries(families)) {
  if (!values.length) fail(`no values found for the family ${fam}`);
  for (const v of values) used.add(`${fam}${fam.includes(".") ? "_" : "."}${v}`);
}
for (const k of used) {
  if (!(k in zh)) fail(`zh-CN.js lacks ${k} (used in the code)`);
  if (!(k in en)) fail(`en.js lacks ${k} (used in the code)`);
}
const prefixes = new Set(["field", "reject"]); // looked up with has(): present for some values only
const unused = Object.keys(zh).filter((k) => !used.has(k) && !prefixes.has(k.split(".")[0]));
if (unused.length) console.log("· keys not referenced literally (check they are used): " + unused.join(", "));

// 3. the service worker's shell list
const sw = readFileSync(join(PWA, "sw.js"), "utf8");
const shell = [...sw.match(/const SHELL = \[([\s\S]*?)\];/)[1].matchAll(/"([^"]+)"/g)].map((m) => m[1]);
const onDisk = files.map((p) => "/" + relative(PWA, p)).filter((p) => p !== "/sw.js");
for (const p of onDisk) if (!shell.includes(p)) fail(`sw.js SHELL lacks ${p}`);
for (const p of shell) if (!onDisk.includes(p)) fail(`sw.js SHELL lists ${p}, which does not exist`);
if (new Set(shell).size !== shell.length) fail("sw.js SHELL has duplicates");

// 4. size
let raw = 0;
let gz = 0;
for (const p of shell) {
  try {
    const buf = readFileSync(join(PWA, p.slice(1)));
    raw += buf.length;
    gz += gzipSync(buf, { level: 9 }).length;
  } catch { /* reported above */ }
}
console.log(`shell: ${shell.length} files, ${raw} bytes, ${gz} bytes gzipped (${(gz / 1024).toFixed(1)} KiB)`);
console.log(`messages: ${Object.keys(zh).length} keys per language`);
if (problems) {
  console.error(`${problems} problem(s)`);
  process.exit(1);
}
console.log("ok");
