// A few line icons as SVG built in code (no icon font, no inline markup strings).

const NS = "http://www.w3.org/2000/svg";

const PATHS = {
  home: ["M3 11l9-7 9 7", "M5 10v10h5v-6h4v6h5V10"],
  list: ["M8 6h13", "M8 12h13", "M8 18h13", "M3.5 6h.01", "M3.5 12h.01", "M3.5 18h.01"],
  sync: ["M20 11a8 8 0 0 0-14.3-4.9L4 8", "M4 4v4h4", "M4 13a8 8 0 0 0 14.3 4.9L20 16", "M20 20v-4h-4"],
  conflict: ["M12 3l10 18H2z", "M12 10v5", "M12 18h.01"],
  back: ["M15 5l-7 7 7 7"],
  plus: ["M12 5v14", "M5 12h14"],
  camera: ["M4 8h3l2-3h6l2 3h3v11H4z", "M12 17a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7z"],
  pin: ["M12 21s-7-6.2-7-11a7 7 0 0 1 14 0c0 4.8-7 11-7 11z", "M12 12.5a2.5 2.5 0 1 0 0-5 2.5 2.5 0 0 0 0 5z"],
  phone: ["M5 4h4l2 5-2.5 1.5a11 11 0 0 0 5 5L15 13l5 2v4a2 2 0 0 1-2 2A16 16 0 0 1 3 6a2 2 0 0 1 2-2z"],
  walk: ["M13 4.5a1.5 1.5 0 1 0 0-3 1.5 1.5 0 0 0 0 3z", "M9 21l2-6 3 3v3", "M7 12l3-4h4l2 4 3 1", "M11 15l-1-4"],
  edit: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
  user: ["M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z", "M4 21a8 8 0 0 1 16 0"],
  flag: ["M5 21V4", "M5 4h11l-2 4 2 4H5"],
  x: ["M6 6l12 12", "M18 6L6 18"],
  check: ["M4 12l5 5L20 6"],
  search: ["M11 18a7 7 0 1 0 0-14 7 7 0 0 0 0 14z", "M21 21l-5-5"],
};

export function icon(name, cls = "icon") {
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", cls);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of PATHS[name] || []) {
    const p = document.createElementNS(NS, "path");
    p.setAttribute("d", d);
    svg.appendChild(p);
  }
  return svg;
}
