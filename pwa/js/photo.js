// A camera photo -> a resized JPEG Blob and its SHA-256 (lowercase hex).
// Phones take 4000 px photos of 3–6 MB; over a 2G link in a village office that is minutes per
// photo, so the long edge goes down to 1600 px and the JPEG to about 300 KB before anything is stored.

export const MAX_EDGE = 1600;
export const TARGET_BYTES = 300 * 1024;
const QUALITIES = [0.8, 0.7, 0.6, 0.5];

async function decode(file) {
  if (typeof createImageBitmap === "function") {
    try {
      return await createImageBitmap(file, { imageOrientation: "from-image" });
    } catch (e) {
      // some browsers reject the options bag, or the format: fall back to an <img>
      try { return await createImageBitmap(file); } catch (e2) { /* fall through */ }
    }
  }
  const url = URL.createObjectURL(file);
  try {
    const img = new Image();
    img.decoding = "async";
    img.src = url;
    await img.decode();
    return img;
  } finally {
    URL.revokeObjectURL(url);
  }
}

function makeCanvas(w, h) {
  if (typeof OffscreenCanvas === "function") {
    const c = new OffscreenCanvas(w, h);
    if (c.getContext("2d")) return c;
  }
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
}

function encode(canvas, quality) {
  if (typeof canvas.convertToBlob === "function") return canvas.convertToBlob({ type: "image/jpeg", quality });
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("encode failed"))), "image/jpeg", quality));
}

function draw(src, w, h) {
  const canvas = makeCanvas(w, h);
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff"; // transparent PNGs become white, not black, in JPEG
  ctx.fillRect(0, 0, w, h);
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(src, 0, 0, w, h);
  return canvas;
}

export async function sha256Hex(blob) {
  const buf = await blob.arrayBuffer();
  const digest = await crypto.subtle.digest("SHA-256", buf);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Resize (long edge ≤ 1600 px), encode as JPEG (quality 0.8, lower while above ~300 KB; then a
 * smaller size if still too big), hash. Returns {blob, sha256, size, width, height, mime}.
 */
export async function processPhoto(file, { maxEdge = MAX_EDGE, targetBytes = TARGET_BYTES } = {}) {
  const src = await decode(file);
  const sw = src.width || src.naturalWidth;
  const sh = src.height || src.naturalHeight;
  if (!sw || !sh) throw new Error("not an image");
  let edge = Math.min(maxEdge, Math.max(sw, sh));
  let blob = null;
  let w = 0;
  let h = 0;
  for (let attempt = 0; attempt < 3 && !blob; attempt++) {
    const scale = edge / Math.max(sw, sh);
    w = Math.max(1, Math.round(sw * scale));
    h = Math.max(1, Math.round(sh * scale));
    const canvas = draw(src, w, h);
    for (const q of QUALITIES) {
      const b = await encode(canvas, q);
      if (b.size <= targetBytes || (q === QUALITIES[QUALITIES.length - 1] && attempt === 2)) {
        blob = b;
        break;
      }
    }
    edge = Math.round(edge * 0.75);
  }
  if (typeof src.close === "function") src.close();
  const sha256 = await sha256Hex(blob);
  return { blob, sha256, size: blob.size, width: w, height: h, mime: "image/jpeg" };
}
