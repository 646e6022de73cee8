"""Read the text of a receipt photo on this machine: Pillow decodes it, RapidOCR reads it.

RapidOCR runs the PP-OCR models shipped in its wheel on onnxruntime's CPU provider. The packages
are an optional extra (`pip install 'expensebot[receipts]'`): importing this module needs none of
them, available() tells whether they are installed (without importing them: a bot that never sees
a photo never pays their memory), and a Reader loads the models (~0.3 s) when it first reads.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import math
import statistics
import threading
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

# Messenger hands over photos of at most ~2048 px a side; 40 MP still lets a phone's full-size photo
# through, and caps what decoding one costs at ~120 MB of RGB (a hostile header is refused unread).
MAX_PIXELS = 40_000_000
# The longer side the engine sees: larger costs time and finds no more (bench/bench_receipts.py).
MAX_SIDE = 2000
# onnxruntime threads for one read: the machine has 2 cores and reads take turns (one Reader, a lock).
THREADS = 2
FORMATS = ("JPEG", "PNG", "WEBP")


class Unreadable(Exception):
    """The file is not a photo we can read; the message says why in plain words."""


@functools.cache
def available() -> bool:
    """Tell whether the optional OCR packages are installed."""
    try:
        return all(importlib.util.find_spec(name) is not None for name in ("numpy", "PIL", "rapidocr_onnxruntime"))
    except (ImportError, ValueError):  # a module set to None, or a broken package's spec
        return False


def decode(data: bytes) -> Image.Image:
    """Open a JPEG, PNG or WebP photo upright, in RGB, at most MAX_SIDE px a side; else raise Unreadable."""
    from PIL import Image, ImageOps

    if not data:
        raise Unreadable("empty file")
    with warnings.catch_warnings():
        # Pillow only warns between its own limit and twice it: refuse those too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise Unreadable(f"image too large ({width * height} pixels)")
            # Shrinks while decoding (a JPEG decodes straight at 1/2, 1/4 or 1/8), so a big photo costs little.
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            return ImageOps.exif_transpose(image).convert("RGB")
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise Unreadable("image too large") from None
        except (OSError, ValueError, SyntaxError, EOFError):  # not an image, another format, cut short
            raise Unreadable("not an image we can read") from None


class Reader:
    """The OCR engine, loaded on first read; keep one: reads take turns, each on at most THREADS threads."""

    def __init__(self) -> None:
        self._engine = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Load the models now (~0.3 s) rather than on the first read."""
        with self._lock:
            if self._engine is None:
                self._engine = _load_engine()

    def lines(self, data: bytes) -> list[str]:
        """Return the text of a receipt photo as its printed lines, top to bottom; [] when none is read."""
        import numpy

        image = decode(data)
        bgr = numpy.ascontiguousarray(numpy.asarray(image)[:, :, ::-1])  # the models were trained on BGR
        self.load()
        with self._lock:
            found, _ = self._engine(bgr)
        return group_lines([(box, text) for box, text, _score in found or []])


def _load_engine():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=THREADS, inter_op_num_threads=1)
    # Find text at the photo's own size (at most MAX_SIDE), never enlarged: RapidOCR 1.4.4 by default
    # scales a photo up until its shorter side is 736 px, which costs time and memory and finds no
    # more. Set here because its keyword arguments do not reach this attribute.
    engine.text_det.limit_type = "max"
    return engine


def group_lines(found: list[tuple[list[list[float]], str]]) -> list[str]:
    """Join the engine's boxes ((corners, text)) into printed lines, even on a page turned a few degrees.

    The engine reads "SUMME EUR" and "8,67" as two boxes. Each box's centre is turned back by the
    page's tilt (the median slope of the boxes' top edges); boxes whose centres then lie within half a
    text height of each other are one line, read left to right. A gap wider than two text heights is
    kept as two spaces, so a line's columns stay apart.
    """
    boxes = [(corners, text.strip()) for corners, text in found if text.strip()]
    if not boxes:
        return []
    tilt = _tilt([corners for corners, _ in boxes])
    cos, sin = math.cos(tilt), math.sin(tilt)
    placed = []
    for corners, text in boxes:
        xs = [x * cos + y * sin for x, y in corners]
        ys = [y * cos - x * sin for x, y in corners]
        placed.append((sum(ys) / 4, min(xs), max(xs), max(ys) - min(ys), text))
    placed.sort()
    rows: list[list[tuple]] = []
    for box in placed:
        row = rows[-1] if rows else None
        if row and abs(box[0] - statistics.fmean(b[0] for b in row)) < 0.5 * min(box[3], row[0][3]):
            row.append(box)
        else:
            rows.append([box])
    return [_join(sorted(row, key=lambda b: b[1])) for row in rows]


def _tilt(boxes: list[list[list[float]]]) -> float:
    """The page's tilt in radians: the median slope of the top edges of boxes wider than they are tall.

    On a page turned a degree the detector still draws many short words' boxes square to the
    image: a flat box says nothing then, so when a third of the boxes slope, only those are measured.
    """
    slopes = [math.atan2(y1 - y0, x1 - x0) for (x0, y0), (x1, y1), _, (x3, y3) in boxes
              if x1 - x0 > 2 * math.hypot(x3 - x0, y3 - y0)]
    sloped = [slope for slope in slopes if slope]
    return statistics.median(sloped) if sloped and len(sloped) >= len(slopes) / 3 else 0.0


def _join(row: list[tuple]) -> str:
    text = row[0][4]
    for before, box in zip(row, row[1:]):
        text += ("  " if box[1] - before[2] > 2 * box[3] else " ") + box[4]
    return text
