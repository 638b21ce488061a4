"""A small PNG line chart (canary weight and success rate over time) in pure Python: zlib + struct,
with a 3x5 pixel font for the labels, so the demo needs no plotting library."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

WHITE, BLACK, GREY = (255, 255, 255), (40, 40, 40), (215, 215, 215)
BLUE, RED = (31, 119, 180), (214, 39, 40)

_FONT = {  # 3x5 glyphs, rows top to bottom, '#' = ink
    "0": "### #.# #.# #.# ###",
    "1": ".#. ##. .#. .#. ###",
    "2": "### ..# ### #.. ###",
    "3": "### ..# ### ..# ###",
    "4": "#.# #.# ### ..# ..#",
    "5": "### #.. ### ..# ###",
    "6": "### #.. ### #.# ###",
    "7": "### ..# ..# ..# ..#",
    "8": "### #.# ### #.# ###",
    "9": "### #.# ### ..# ###",
    "%": "#.# ..# .#. #.. #.#",
    ".": "... ... ... ... .#.",
    " ": "... ... ... ... ...",
    "-": "... ... ### ... ...",
    "(": ".#. #.. #.. #.. .#.",
    ")": ".#. ..# ..# ..# .#.",
    "A": ".#. #.# ### #.# #.#",
    "B": "##. #.# ##. #.# ##.",
    "C": "### #.. #.. #.. ###",
    "D": "##. #.# #.# #.# ##.",
    "E": "### #.. ##. #.. ###",
    "F": "### #.. ##. #.. #..",
    "G": "### #.. #.# #.# ###",
    "H": "#.# #.# ### #.# #.#",
    "I": "### .#. .#. .#. ###",
    "K": "#.# #.# ##. #.# #.#",
    "L": "#.. #.. #.. #.. ###",
    "M": "#.# ### ### #.# #.#",
    "N": "##. #.# #.# #.# #.#",
    "O": "### #.# #.# #.# ###",
    "P": "### #.# ### #.. #..",
    "R": "##. #.# ##. #.# #.#",
    "S": "### #.. ### ..# ###",
    "T": "### .#. .#. .#. .#.",
    "U": "#.# #.# #.# #.# ###",
    "V": "#.# #.# #.# #.# .#.",
    "W": "#.# #.# ### ### #.#",
    "Y": "#.# #.# .#. .#. .#.",
}


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = [[WHITE] * width for _ in range(height)]

    def dot(self, x: int, y: int, color, size: int = 1) -> None:
        for dy in range(size):
            for dx in range(size):
                if 0 <= x + dx < self.width and 0 <= y + dy < self.height:
                    self.pixels[y + dy][x + dx] = color

    def line(self, x0: int, y0: int, x1: int, y1: int, color, size: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), color, size)

    def text(self, x: int, y: int, text: str, color=BLACK, scale: int = 2) -> None:
        for ch in text.upper():
            rows = _FONT.get(ch, _FONT[" "]).split()
            for r, row in enumerate(rows):
                for c, cell in enumerate(row):
                    if cell == "#":
                        self.dot(x + c * scale, y + r * scale, color, scale)
            x += 4 * scale

    def png(self) -> bytes:
        raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in self.pixels)

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def chart(
    path: Path,
    times: Sequence[float],
    series: Sequence[tuple[str, Sequence[float | None], tuple]],
    marks: Sequence[tuple[float, str]] = (),
    width: int = 900,
    height: int = 420,
) -> Path:
    """Percent series (0-100) over time; `marks` are labelled vertical lines (e.g. "V2", "V3")."""
    canvas = Canvas(width, height)
    left, right, top, bottom = 60, width - 20, 40, height - 50
    span = max(times[-1] if times else 1.0, 1.0)

    def px(t: float) -> int:
        return round(left + (right - left) * t / span)

    def py(v: float) -> int:
        return round(bottom - (bottom - top) * max(0.0, min(100.0, v)) / 100)

    for pct in range(0, 101, 25):
        canvas.line(left, py(pct), right, py(pct), GREY)
        canvas.text(left - 40, py(pct) - 4, f"{pct}%")
    canvas.line(left, top, left, bottom, BLACK)
    canvas.line(left, bottom, right, bottom, BLACK)
    step = max(10, round(span / 8 / 10) * 10)
    for t in range(0, int(span) + 1, step):
        canvas.line(px(t), bottom, px(t), bottom + 5, BLACK)
        canvas.text(px(t) - 6, bottom + 10, str(t))
    canvas.text(right - 120, bottom + 28, "TIME (S)")
    for at, label in marks:
        for y in range(top, bottom, 6):
            canvas.line(px(at), y, px(at), y + 2, BLACK)
        canvas.text(px(at) + 4, top + 4, label)
    legend_x = left + 10
    for name, values, color in series:
        canvas.line(legend_x, 18, legend_x + 20, 18, color, 3)
        canvas.text(legend_x + 26, 14, name, color)
        legend_x += 30 + 8 * len(name) + 20
        previous = None
        for at, v in zip(times, values):
            point = None if v is None else (px(at), py(v))
            if point and previous:
                canvas.line(previous[0], previous[1], point[0], point[1], color, 2)
            previous = point
    path.write_bytes(canvas.png())
    return path
