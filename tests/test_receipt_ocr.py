"""The OCR engine on generated receipt photos, and what decode refuses; skipped without the OCR extra."""

import datetime
import io
import math
import random
import struct
import zlib

import pytest

from expensebot.receipts import ocr
from expensebot.receipts.fields import read_fields

TODAY = datetime.date(2026, 12, 7)
needs_extra = pytest.mark.skipif(not ocr.available(), reason="the OCR extra is not installed: "
                                 "pip install 'rapidocr-onnxruntime==1.4.4' 'pillow>=10'")


@pytest.fixture(scope="module")
def reader():
    return ocr.Reader()


def make_receipt(seed: int):
    from receipt_images import make_receipt  # Pillow draws them: imported only when the extra is there

    return make_receipt(seed, today=TODAY)


def make_not_receipt(seed: int) -> bytes:
    from receipt_images import make_not_receipt

    return make_not_receipt(seed)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's header)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def image_bytes(size, format, **options) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 180, 160)).save(out, format, **options)
    return out.getvalue()


@needs_extra
@pytest.mark.parametrize("seed", range(12))
def test_a_receipt_photo_gives_its_total_date_and_merchant(reader, seed):
    receipt = make_receipt(seed)
    found = read_fields(reader.lines(receipt.image), default_currency=receipt.currency, today=TODAY)
    assert found.total_minor == receipt.total_minor
    assert found.date == receipt.date
    assert "".join(found.merchant.split()).casefold() == "".join(receipt.merchant.split()).casefold()


@needs_extra
def test_a_landscape_is_not_a_receipt(reader):
    found = read_fields(reader.lines(make_not_receipt(1)), default_currency="EUR", today=TODAY)
    assert found.total_minor is None
    assert not found.is_receipt


@needs_extra
def test_a_blank_page_has_no_lines(reader):
    assert reader.lines(image_bytes((800, 600), "PNG")) == []


REFUSALS = {
    "empty": "empty file",
    "gif": "not an image we can read",
    "random bytes": "not an image we can read",
    "text named .jpg": "not an image we can read",
    "truncated jpeg": "not an image we can read",
    "png bomb": "image too large",  # beyond Pillow's own limit
    "png of 48 MP": "image too large (48000000 pixels)",  # beyond ours only
}


def refused_file(kind: str) -> bytes:
    """A file of a kind decode must refuse (built here: the parameters are collected without the extra)."""
    if kind == "empty":
        return b""
    if kind == "gif":
        return image_bytes((40, 30), "GIF")
    if kind == "random bytes":
        return random.Random(1).randbytes(5000)
    if kind == "text named .jpg":
        return b"receipt.jpg: this is a text file, not a photo\n"
    if kind == "truncated jpeg":
        return make_receipt(3).image[:20_000]  # cut short in transit
    return png_claiming(100_000, 100_000) if kind == "png bomb" else png_claiming(8_000, 6_000)


@needs_extra
@pytest.mark.parametrize("kind", REFUSALS)
def test_decode_refuses(kind):
    with pytest.raises(ocr.Unreadable) as refused:
        ocr.decode(refused_file(kind))
    assert str(refused.value) == REFUSALS[kind]


@needs_extra
def test_reader_refuses_what_decode_refuses(reader):
    with pytest.raises(ocr.Unreadable):
        reader.lines(png_claiming(100_000, 100_000))


@needs_extra
def test_decode_turns_a_photo_upright_and_shrinks_it():
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was held on its side: turn 90° clockwise to show
    image = ocr.decode(image_bytes((4000, 3000), "JPEG", exif=exif.tobytes()))
    assert image.size == (ocr.MAX_SIDE * 3 // 4, ocr.MAX_SIDE)
    assert image.mode == "RGB"


@needs_extra
def test_decode_reads_png_and_webp_in_rgb():
    assert ocr.decode(image_bytes((300, 200), "PNG")).size == (300, 200)
    assert ocr.decode(image_bytes((300, 200), "WEBP")).mode == "RGB"


def box(x: float, y: float, width: float, height: float = 20, degrees: float = 0) -> list[list[float]]:
    """The corners of a text box whose top-left is (x, y), turned about the page's origin."""
    turn = math.radians(degrees)
    corners = [(x, y), (x + width, y), (x + width, y + height), (x, y + height)]
    cos, sin = math.cos(turn), math.sin(turn)
    return [[cx * cos - cy * sin, cx * sin + cy * cos] for cx, cy in corners]


def test_boxes_on_one_printed_line_are_joined_left_to_right():
    found = [(box(500, 102, 80), "8,67"), (box(20, 100, 150), "SUMME EUR"), (box(20, 70, 120), "Brezel"),
             (box(500, 71, 80), "0,79"), (box(190, 100, 40), "gesamt")]
    assert ocr.group_lines(found) == ["Brezel  0,79", "SUMME EUR gesamt  8,67"]


@pytest.mark.parametrize("degrees", [-3, 3])
def test_a_tilted_page_keeps_its_lines(degrees):
    found = [(box(x, y, w, degrees=degrees), text) for x, y, w, text in [
        (20, 100, 150, "TOTAL"), (800, 100, 80, "12.50"), (20, 130, 150, "CASH"), (800, 130, 80, "20.00"),
        (20, 160, 150, "CHANGE"), (800, 160, 80, "7.50")]]
    assert ocr.group_lines(found) == ["TOTAL  12.50", "CASH  20.00", "CHANGE  7.50"]


def test_no_boxes_no_lines():
    assert ocr.group_lines([]) == []
    assert ocr.group_lines([(box(0, 0, 50), "  ")]) == []


def test_a_tilted_page_whose_short_words_have_upright_boxes():
    turn = math.radians(-1.2)

    def upright(x: float, y: float, width: float) -> list[list[float]]:
        """A box square to the image where the turned page puts a short word."""
        return box(x * math.cos(turn) - y * math.sin(turn), x * math.sin(turn) + y * math.cos(turn), width)

    found = []
    rows = [(100, "SUBTOTAL", "111.29"), (135, "Sales Tax 8.25%", "9.18"), (170, "AMOUNT DUE", "120.47")]
    for y, label, amount in rows:
        found += [(box(20, y, 300, degrees=-1.2), label), (upright(1300, y, 60), amount)]
    assert ocr.group_lines(found) == ["SUBTOTAL  111.29", "Sales Tax 8.25%  9.18", "AMOUNT DUE  120.47"]
