"""Draw the app icons (a white 3×3 grid on deep blue, one cell lit: the household being visited).

Pure standard library (zlib + struct), so regenerating needs nothing installed:
    python3 tools/make_icons.py
"""

import struct
import zlib
from pathlib import Path

BLUE = (11, 58, 130)
WHITE = (255, 255, 255)
RED = (230, 72, 44)
SS = 4  # supersampling per axis


def shade(x, y, full_bleed, lo, hi):
    """Colour (r, g, b, a) at unit coordinates (x, y)."""
    if not full_bleed:
        r = 0.19  # rounded square with transparent corners
        cx = min(max(x, r), 1 - r)
        cy = min(max(y, r), 1 - r)
        if (x - cx) ** 2 + (y - cy) ** 2 > r * r:
            return (0, 0, 0, 0)
    size = hi - lo
    cell = size / 3
    w = size * 0.075  # line width
    # the lit cell: middle row, right column
    cx0, cy0 = lo + 2 * cell, lo + cell
    if cx0 + w / 2 <= x <= cx0 + cell - w / 2 and cy0 + w / 2 <= y <= cy0 + cell - w / 2:
        return RED + (255,)
    if lo - w / 2 <= x <= hi + w / 2 and lo - w / 2 <= y <= hi + w / 2:
        for k in range(4):
            p = lo + k * cell
            if abs(x - p) <= w / 2 or abs(y - p) <= w / 2:
                return WHITE + (255,)
    return BLUE + (255,)


def render(n, full_bleed, lo, hi):
    rows = []
    for py in range(n):
        row = bytearray([0])  # filter: none
        for px in range(n):
            acc = [0, 0, 0, 0]
            for sy in range(SS):
                for sx in range(SS):
                    c = shade((px + (sx + 0.5) / SS) / n, (py + (sy + 0.5) / SS) / n, full_bleed, lo, hi)
                    a = c[3]
                    acc[0] += c[0] * a
                    acc[1] += c[1] * a
                    acc[2] += c[2] * a
                    acc[3] += a
            a = acc[3]
            if a:
                row += bytes((round(acc[0] / a), round(acc[1] / a), round(acc[2] / a), round(a / (SS * SS))))
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return png(n, n, b"".join(rows))


def png(w, h, raw):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent / "pwa" / "icons"
    (here / "icon-192.png").write_bytes(render(192, False, 0.24, 0.76))
    (here / "icon-512.png").write_bytes(render(512, False, 0.24, 0.76))
    # maskable: full bleed, the symbol inside the central safe zone (a circle of 80 %)
    (here / "maskable-512.png").write_bytes(render(512, True, 0.31, 0.69))
    (here / "apple-touch-icon.png").write_bytes(render(180, True, 0.26, 0.74))
