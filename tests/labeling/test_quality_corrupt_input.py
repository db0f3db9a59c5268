"""Frame quality checks on corrupt input of every kind: a failed decode or a flag, never a crash.

Pure functions, no database. The checks on their own are tested in test_quality.py."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from labeling.quality import CHECKS, CheckResult, check_frame_bytes, measure_image
from tests.labeling import quality_calibration as calibration
from tests.labeling.quality_frames import DEFAULTS, jpeg, png, results_of

# --- corrupt input: a flag, never a crash -----------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_claiming(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _jpeg_claiming(width: int, height: int, good: bytes) -> bytes:
    sof = good.index(b"\xff\xc0")
    return good[: sof + 5] + struct.pack(">HH", height, width) + good[sof + 9 :]


def _pillow(image: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def _corrupt_inputs() -> dict[str, object]:
    rng = np.random.default_rng(0)
    photo_bgr = calibration.photo("chelsea")
    good_jpeg, good_png = jpeg(photo_bgr), png(photo_bgr)
    cases: dict[str, object] = {
        "empty": b"",
        "one byte": b"\xff",
        "text": b"hello, railcar",
        "random 100": rng.bytes(100),
        "random 100k": rng.bytes(100_000),
        "jpeg magic then noise": b"\xff\xd8\xff\xe0" + rng.bytes(5000),
        "png magic then noise": b"\x89PNG\r\n\x1a\n" + rng.bytes(5000),
        "jpeg header only": good_jpeg[:600],
        "png header claims 100000x100000": _png_claiming(100_000, 100_000),
        "jpeg header claims 65535x65535": _jpeg_claiming(65535, 65535, good_jpeg),
        "jpeg header claims 0x0": _jpeg_claiming(0, 0, good_jpeg),
        "not bytes": "a string",
        "none": None,
    }
    for share in (0.1, 0.5, 0.9, 0.999):
        cases[f"jpeg truncated at {share:.1%}"] = good_jpeg[: int(len(good_jpeg) * share)]
        cases[f"png truncated at {share:.1%}"] = good_png[: int(len(good_png) * share)]
    return cases


@pytest.mark.parametrize(("name", "data"), list(_corrupt_inputs().items()))
def test_corrupt_input_yields_a_failed_decode_result(name, data) -> None:
    results = check_frame_bytes(data, railcar_box=None, thresholds=DEFAULTS)
    assert results[0].check == "decode"
    assert not results[0].passed, results[0]
    assert results[0].value is None and results[0].detail
    assert len(results) == 1


@pytest.mark.parametrize(
    ("name", "data", "width", "height"),
    [
        ("1x1 png", png(np.zeros((1, 1, 3), np.uint8)), 1, 1),
        ("1x100000 strip", png(np.full((100_000, 1), 128, np.uint8)), 1, 100_000),
        ("100000x1 strip", png(np.full((1, 100_000), 128, np.uint8)), 100_000, 1),
    ],
)
def test_images_too_small_to_show_a_railcar_fail_decode(name, data, width, height) -> None:
    results = check_frame_bytes(data, railcar_box=None, thresholds=DEFAULTS)
    assert [r.check for r in results] == ["decode"]
    assert f"{width}x{height}" in results[0].detail


def _decodable_oddities() -> dict[str, bytes]:
    photo_bgr = calibration.photo("coffee")
    gray = cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2GRAY)
    rgba = cv2.cvtColor(photo_bgr, cv2.COLOR_BGR2BGRA)
    rgba[..., 3] = 0  # fully transparent: the colour is still there
    return {
        "grayscale png": png(gray),
        "grayscale jpeg": jpeg(gray),
        "16-bit png": png(photo_bgr.astype(np.uint16) * 257),
        "rgba png": png(rgba),
        "bmp": _pillow(Image.fromarray(photo_bgr[..., ::-1]), "BMP"),
        "tiff": _pillow(Image.fromarray(photo_bgr[..., ::-1]), "TIFF"),
        "webp": _pillow(Image.fromarray(photo_bgr[..., ::-1]), "WEBP"),
        "gif": _pillow(Image.fromarray(photo_bgr[..., ::-1]), "GIF"),
        "16x16 png": png(np.full((16, 16, 3), 90, np.uint8)),
        "all black": jpeg(np.zeros((540, 960, 3), np.uint8)),
        "all white": jpeg(np.full((540, 960, 3), 255, np.uint8)),
        "100x30000 strip": png(np.full((30_000, 100, 3), 128, np.uint8)),
        "jpeg with trailing zeros": jpeg(photo_bgr) + b"\0" * 32,
    }


@pytest.mark.parametrize(("name", "data"), list(_decodable_oddities().items()))
def test_odd_but_decodable_images_get_every_check_without_crashing(name, data) -> None:
    results = check_frame_bytes(data, railcar_box=(10, 10, 90, 60), thresholds=DEFAULTS)
    assert [r.check for r in results] == list(CHECKS)
    assert results[0].passed
    assert all(isinstance(r, CheckResult) and r.value is not None for r in results)
    assert all(np.isfinite(r.value) for r in results)


def test_a_16_bit_png_reads_like_its_8_bit_original() -> None:
    photo_bgr = calibration.photo("coffee")
    eight = results_of(png(photo_bgr))
    sixteen = results_of(png(photo_bgr.astype(np.uint16) * 257))
    for check in ("blur", "underexposure", "haze"):
        assert sixteen[check].value == pytest.approx(eight[check].value, rel=0.02)


def test_measure_image_reads_views_with_odd_strides(railcar) -> None:
    image = railcar["clean"]
    for view in (image[:, ::-1], image[::2, ::2], image[..., 1], image[:, :, ::-1]):
        results = measure_image(view, railcar_box=None, thresholds=DEFAULTS)
        assert [r.check for r in results] == list(CHECKS)


def test_constant_frames_are_flagged_not_crashed_on() -> None:
    black = results_of(jpeg(np.zeros((540, 960, 3), np.uint8)))
    white = results_of(jpeg(np.full((540, 960, 3), 255, np.uint8)))
    assert not black["underexposure"].passed and not black["blur"].passed
    assert not white["overexposure"].passed and not white["occupancy"].passed


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((100,), np.uint8),
        np.zeros((50, 80, 5), np.uint8),
        np.zeros((50, 80, 3), np.float32),
        np.zeros((50, 80, 3), bool),
        "not an array",
    ],
    ids=["empty", "1-d", "5 channels", "float", "bool", "str"],
)
def test_measure_image_flags_arrays_it_cannot_read(array) -> None:
    results = measure_image(array, railcar_box=None, thresholds=DEFAULTS)
    assert [(r.check, r.passed) for r in results] == [("decode", False)]


def test_damaged_jpeg_data_never_raises() -> None:
    # Flipped bits inside the entropy-coded data often still decode (to garbage): the SHA-256
    # check at ingest catches those; here the only promise is a result, never an exception.
    rng = np.random.default_rng(1)
    good = jpeg(calibration.photo("coins"))
    for _ in range(200):
        cut = int(rng.integers(0, len(good)))
        mutated = bytearray(good[:cut] if rng.random() < 0.5 else good)
        for i in rng.integers(0, max(1, len(mutated)), int(rng.integers(1, 20))):
            if mutated:
                mutated[int(i)] = int(rng.integers(0, 256))
        results = check_frame_bytes(bytes(mutated), railcar_box=None, thresholds=DEFAULTS)
        assert results and results[0].check == "decode"
