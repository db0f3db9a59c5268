"""COCO run-length encoding of binary masks, compatible with pycocotools, in plain NumPy.

A mask is stored as `{"size": [h, w], "counts": str}`: the run lengths of the mask read in
column-major (Fortran) order, starting with a run of zeros (of length 0 when the first pixel is
set), written as pycocotools' `rleToString` does: from the third count on, each count is stored
as its difference to the count two places before; each value is cut into 5-bit chunks, least
significant first, with bit 0x20 meaning "more chunks follow" and bit 0x10 of the last chunk the
sign, and each chunk is offset by 48 into printable ASCII (maskApi.c). pycocotools itself is a C
extension; this module needs none, and tests/labeling/test_masks.py checks it against
pycocotools' output.
"""

from typing import TypedDict

import numpy as np


class Rle(TypedDict):
    size: list[int]
    counts: str


def run_lengths(mask: np.ndarray) -> np.ndarray:
    """Column-major run lengths of a 2-D mask, first run of zeros, as int64."""
    if mask.ndim != 2:
        raise ValueError(f"a mask is 2-D, not {mask.shape}")
    flat = np.asarray(mask, dtype=bool).ravel(order="F")
    if flat.size == 0:
        return np.zeros(0, np.int64)
    # Positions where the value changes; the runs lie between them.
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], changes, [flat.size]))
    counts = np.diff(bounds)
    if flat[0]:
        counts = np.concatenate(([0], counts))
    return counts.astype(np.int64)


def counts_to_string(counts: np.ndarray) -> str:
    """pycocotools' `rleToString`, vectorised over the counts."""
    values = np.asarray(counts, dtype=np.int64).copy()
    if values.size == 0:
        return ""
    values[3:] -= np.asarray(counts, dtype=np.int64)[1:-2]
    chunks = []  # one column of 5-bit chunks per pass, for every value still being written
    active = np.ones(values.size, bool)
    while active.any():
        c = values & 0x1F
        values >>= 5  # arithmetic shift: negative deltas end in a run of ones, as in C
        more = np.where((c & 0x10) != 0, values != -1, values != 0)
        chunks.append((np.where(more, c | 0x20, c) + 48, active.copy()))
        active &= more
    codes = np.stack([c for c, _ in chunks], axis=1)
    valid = np.stack([a for _, a in chunks], axis=1)
    # Row-major order over (value, chunk) keeps each value's chunks together, in order.
    return codes[valid].astype(np.uint8).tobytes().decode("ascii")


def string_to_counts(counts: str | bytes) -> np.ndarray:
    """pycocotools' `rleFrString`: the run lengths of a compressed counts string."""
    data = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    if not data:
        return np.zeros(0, np.int64)
    codes = np.frombuffer(data, np.uint8).astype(np.int64) - 48
    if codes.min() < 0 or codes.max() > 0x3F:
        raise ValueError("RLE counts hold characters outside the COCO alphabet")
    last = (codes & 0x20) == 0  # the last chunk of each value
    if not last[-1]:
        raise ValueError("RLE counts end in the middle of a value")
    value_index = np.concatenate(([0], np.cumsum(last)[:-1]))
    starts = np.flatnonzero(np.concatenate(([True], last[:-1])))
    position = np.arange(codes.size) - starts[value_index]
    if position.max() > 12:
        raise ValueError("RLE counts hold a value longer than 64 bits")
    parts = (codes & 0x1F) << (5 * position)
    values = np.zeros(int(last.sum()), np.int64)
    np.add.at(values, value_index, parts)
    # Sign extension: a last chunk with bit 0x10 set makes the value negative.
    negative = (codes[last] & 0x10) != 0
    widths = 5 * (position[last] + 1)
    values[negative] |= -1 << widths[negative]
    # Undo the delta trick: value i (i > 2) was stored minus value i - 2.
    out = values.copy()
    out[2::2] = np.cumsum(values[2::2])
    out[1::2] = np.cumsum(values[1::2])
    return out


def encode(mask: np.ndarray) -> Rle:
    """The compressed COCO RLE of an H x W mask (any dtype; nonzero is set)."""
    counts = run_lengths(mask)
    height, width = mask.shape
    return {"size": [int(height), int(width)], "counts": counts_to_string(counts)}


def decode(rle: dict) -> np.ndarray:
    """The H x W bool mask of a COCO RLE: compressed (str or bytes counts) or a list of counts."""
    size = rle.get("size") if isinstance(rle, dict) else None
    if not (
        isinstance(size, list | tuple)
        and len(size) == 2
        and all(isinstance(v, int) and v >= 0 for v in size)
    ):
        raise ValueError("RLE size must be [height, width]")
    height, width = size
    raw = rle.get("counts")
    if isinstance(raw, str | bytes):
        counts = string_to_counts(raw)
    elif isinstance(raw, list) and all(isinstance(v, int) for v in raw):
        counts = np.asarray(raw, dtype=np.int64)
    else:
        raise ValueError("RLE counts must be a string or a list of integers")
    if counts.size and counts.min() < 0:
        raise ValueError("RLE counts must not be negative")
    if int(counts.sum()) != height * width:
        raise ValueError(f"RLE counts cover {int(counts.sum())} pixels, not {height} x {width}")
    values = np.arange(counts.size) % 2 == 1
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()


def area(rle: dict) -> int:
    """Set pixels of a COCO RLE, without decoding it to a mask."""
    raw = rle["counts"]
    counts = string_to_counts(raw) if isinstance(raw, str | bytes) else np.asarray(raw)
    return int(counts[1::2].sum())
