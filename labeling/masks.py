"""Click-to-mask: one interface, two engines.

`predict_mask(frame=, prompts=)` turns an annotator's prompts (points and/or a box, in the
frame's pixel coordinates) into a mask at frame resolution, stored as COCO RLE (`labeling.rle`)
with the prompts, the engine and the area.

- `SamEngine` (segment-anything) when a SAM checkpoint is configured (`sam.sam_enabled()`). The
  image encoder runs once per frame (the pipeline precomputes the embedding when the railcar
  enters the pool, `sam.ensure_embedding`); a click runs only the prompt encoder and the mask
  decoder on the cached embedding.
- `GrabCutEngine` (OpenCV) otherwise: GrabCut on a downscaled copy of the frame, seeded by the
  box and the points.

Seed 001 (Scrap-SAM-CLIP) found a box plus one positive point the most robust prompt for scrap;
the annotation page asks for that, but any points and/or a box are accepted.
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import cv2
import numpy as np

from labeling import rle as rle_codec
from labeling.framefiles import read_frame
from labeling.models import Frame
from labeling.sam_settings import sam_enabled

if TYPE_CHECKING:
    from labeling import sam as sam_types


def _sam() -> ModuleType:
    """segment-anything, imported on first use: a web worker that only routes railcars and
    records ratings never loads torch (seconds of start-up and hundreds of MB per worker)."""
    from labeling import sam

    return sam


MAX_POINTS = 32
# Loaded embeddings (4 MiB each) and decoded frames (6 MiB at 1920x1080) kept per process.
CACHE_ENTRIES = 8

Box = tuple[float, float, float, float]
K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A small thread-safe LRU map. Loading happens outside the lock: two threads missing the
    same key both load it (the values are equal), and nobody waits on another's storage read."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = load()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def _number(value: Any, what: str) -> float:
    # bool is an int to Python, never a coordinate to us.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what} must be a number, not {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} must be finite, not {value!r}")
    return number


@dataclass(frozen=True)
class Prompts:
    """Points (x, y) with labels (1 on the object, 0 off it) and an optional box (x0, y0, x1, y1),
    in the frame's pixel coordinates."""

    points: list[tuple[float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    box: Box | None = None

    @classmethod
    def from_json(cls, data: Any, *, width: int, height: int) -> Prompts:
        """Parse `{"points": [[x, y], ...], "labels": [1, 0, ...], "box": [x0, y0, x1, y1]}`
        ("box" optional or null) for a width x height frame; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("prompts must be an object with points, labels and box")
        unknown = set(data) - {"points", "labels", "box"}
        if unknown:
            raise ValueError(f"unknown prompt fields: {', '.join(sorted(unknown))}")
        raw_points, raw_labels = data.get("points", []), data.get("labels", [])
        if not isinstance(raw_points, list) or not isinstance(raw_labels, list):
            raise ValueError("points and labels must be lists")
        if len(raw_points) > MAX_POINTS:
            raise ValueError(f"at most {MAX_POINTS} points, not {len(raw_points)}")
        points = []
        for i, point in enumerate(raw_points):
            if not isinstance(point, list | tuple) or len(point) != 2:
                raise ValueError(f"point {i} must be [x, y]")
            points.append((_number(point[0], f"point {i} x"), _number(point[1], f"point {i} y")))
        labels = []
        for i, label in enumerate(raw_labels):
            if isinstance(label, bool) or label not in (0, 1):
                raise ValueError(f"label {i} must be 1 (object) or 0 (background), not {label!r}")
            labels.append(int(label))
        box = None
        if data.get("box") is not None:
            raw_box = data["box"]
            if not isinstance(raw_box, list | tuple) or len(raw_box) != 4:
                raise ValueError("box must be [x0, y0, x1, y1]")
            x0, y0, x1, y1 = (_number(v, f"box[{i}]") for i, v in enumerate(raw_box))
            box = (x0, y0, x1, y1)
        prompts = cls(points=points, labels=labels, box=box)
        prompts.check(width=width, height=height)
        return prompts

    def check(self, *, width: int, height: int) -> None:
        """ValueError unless these prompts are well-formed and inside a width x height frame."""
        if width < 1 or height < 1:
            raise ValueError(f"the frame has no pixels ({width} x {height})")
        if len(self.points) != len(self.labels):
            raise ValueError(f"{len(self.points)} points but {len(self.labels)} labels")
        if len(self.points) > MAX_POINTS:
            raise ValueError(f"at most {MAX_POINTS} points, not {len(self.points)}")
        for i, (x, y) in enumerate(self.points):
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f"point {i} must be finite")
            if not (0 <= x <= width and 0 <= y <= height):
                raise ValueError(f"point {i} ({x:g}, {y:g}) is outside the {width}x{height} frame")
        if any(label not in (0, 1) for label in self.labels):
            raise ValueError("labels must be 1 (object) or 0 (background)")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if not all(math.isfinite(v) for v in self.box):
                raise ValueError("box must be finite")
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise ValueError(
                    f"box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) must have x0 < x1 and y0 < y1, "
                    f"inside the {width}x{height} frame"
                )
        if self.box is None and 1 not in self.labels:
            raise ValueError("give a box or at least one point on the object")

    def as_json(self) -> dict[str, Any]:
        return {
            "points": [[x, y] for x, y in self.points],
            "labels": list(self.labels),
            "box": list(self.box) if self.box is not None else None,
        }


@dataclass(frozen=True)
class MaskResult:
    mask: np.ndarray  # H x W bool, at frame resolution
    score: float  # SAM's predicted IoU of the mask; GrabCut has no confidence and says 1.0
    engine: str  # "sam:<model key>" or "grabcut"
    area: int  # set pixels
    rle: rle_codec.Rle  # COCO compressed RLE of `mask`

    def as_json(self) -> dict[str, Any]:
        """What is stored beside the prompts: everything but the decoded mask."""
        return {"rle": self.rle, "engine": self.engine, "area": self.area, "score": self.score}


class MaskEngine(Protocol):
    @property
    def name(self) -> str: ...

    def predict(self, *, frame: Frame, prompts: Prompts) -> MaskResult: ...


def _result(mask: np.ndarray, *, score: float, engine: str) -> MaskResult:
    return MaskResult(
        mask=mask,
        score=score,
        engine=engine,
        area=int(np.count_nonzero(mask)),
        rle=rle_codec.encode(mask),
    )


def _content_sha(frame: Frame) -> str:
    if not frame.content_sha256 or not frame.file or frame.rejection:
        raise ValueError(f"frame {frame.pk} has no stored image to segment")
    return frame.content_sha256


class SamEngine:
    """Segment-anything on the frame's cached image embedding: a click runs the decoder only."""

    def __init__(self) -> None:
        self._embeddings: _Lru[tuple[str, str], sam_types.FrameEmbedding] = _Lru(CACHE_ENTRIES)

    @property
    def name(self) -> str:
        return f"sam:{_sam().model_key()}"

    def _embedding(self, frame: Frame, key: str) -> sam_types.FrameEmbedding:
        sha = _content_sha(frame)

        def load() -> sam_types.FrameEmbedding:
            embedding = _sam().load_embedding(content_sha256=sha)
            if embedding is None:
                # Not precomputed yet (the railcar just entered the pool) or unreadable: this
                # click pays for the image encoder once, and stores the result for the others.
                _sam().ensure_embedding(frame=frame)
                embedding = _sam().load_embedding(content_sha256=sha)
            if embedding is None:
                raise RuntimeError(f"the SAM embedding of frame {frame.pk} cannot be stored")
            return embedding

        # Keyed by model too: a new checkpoint must not answer with an old model's features.
        return self._embeddings.get_or_load((key, sha), load)

    def predict(self, *, frame: Frame, prompts: Prompts) -> MaskResult:
        key = _sam().model_key()
        embedding = self._embedding(frame, key)
        height, width = embedding.original_size
        prompts.check(width=width, height=height)
        predictor = _sam().predictor_from_embedding(embedding=embedding)
        # Multimask even for box + point: SAM's three candidates with its own quality score
        # pick the right scale of an ambiguous click; the best-scored one is kept.
        candidates, scores, _ = predictor.predict(
            point_coords=np.asarray(prompts.points, np.float32) if prompts.points else None,
            point_labels=np.asarray(prompts.labels, np.int32) if prompts.points else None,
            box=np.asarray(prompts.box, np.float32) if prompts.box is not None else None,
            multimask_output=True,
        )
        best = int(np.argmax(scores))
        return _result(candidates[best], score=float(scores[best]), engine=f"sam:{key}")

    def clear(self) -> None:
        self._embeddings.clear()


# GrabCut's cost grows with the pixels it models (about 30 ms for 25,000 pixels and three
# iterations on one core, twice that for 40,000), so it runs on the prompt's region plus a margin
# of background, cropped from the frame and shrunk to at most CROP_MAX_PIXELS; the mask is scaled
# back to the frame. Small objects are thus segmented at full resolution (on a frame halved to
# 960 px, blobs 70 px wide were lost outright), large ones downscaled.
# tests/benchmarks/bench_masks.py measures a click.
CROP_MAX_PIXELS = 30_000
GRABCUT_ITERATIONS = 3
# The background margin, as a share of the region's long side: GrabCut's background colour
# model is learnt from it.
MARGIN = 0.25
MARGIN_MIN = 12.0
# Without a box, the object is looked for this far (a share of the frame's short side) around
# the positive points.
POINT_REACH = 0.08


def _decode_bgr(frame: Frame) -> np.ndarray:
    image = cv2.imdecode(
        np.frombuffer(read_frame(frame=frame), np.uint8),
        cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION,
    )
    if image is None:
        raise ValueError(f"frame {frame.pk} cannot be decoded")
    return image


def _prompt_region(prompts: Prompts, *, width: int, height: int) -> Box:
    if prompts.box is not None:
        return prompts.box
    xs = [x for (x, _), label in zip(prompts.points, prompts.labels, strict=True) if label == 1]
    ys = [y for (_, y), label in zip(prompts.points, prompts.labels, strict=True) if label == 1]
    reach = POINT_REACH * min(width, height)
    return (
        max(0.0, min(xs) - reach),
        max(0.0, min(ys) - reach),
        min(float(width), max(xs) + reach),
        min(float(height), max(ys) + reach),
    )


def grabcut(image: np.ndarray, *, prompts: Prompts) -> np.ndarray:
    """GrabCut of an H x W x 3 image for the prompts: an H x W bool mask.

    Inside the box (or the reach around the positive points) is probably object, outside it
    certainly background, and each point a disk of certain object or background: GrabCut's
    rectangle initialisation with the points added, so one call serves every kind of prompt.
    With positive points, only the parts connected to one of them are kept: the object clicked.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = _prompt_region(prompts, width=w, height=h)
    margin = max(MARGIN_MIN, MARGIN * max(x1 - x0, y1 - y0))
    cx0, cy0 = max(0, math.floor(x0 - margin)), max(0, math.floor(y0 - margin))
    cx1, cy1 = min(w, math.ceil(x1 + margin)), min(h, math.ceil(y1 + margin))
    crop = image[cy0:cy1, cx0:cx1]
    shrink = min(1.0, math.sqrt(CROP_MAX_PIXELS / crop.shape[0] / crop.shape[1]))
    if shrink < 1:
        size = (max(1, round(crop.shape[1] * shrink)), max(1, round(crop.shape[0] * shrink)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    else:
        crop = np.ascontiguousarray(crop)
    fx, fy = crop.shape[1] / (cx1 - cx0), crop.shape[0] / (cy1 - cy0)

    seeds = np.full(crop.shape[:2], cv2.GC_BGD, np.uint8)
    rx0, ry0 = math.floor((x0 - cx0) * fx), math.floor((y0 - cy0) * fy)
    rx1 = max(rx0 + 1, math.ceil((x1 - cx0) * fx))
    ry1 = max(ry0 + 1, math.ceil((y1 - cy0) * fy))
    seeds[ry0:ry1, rx0:rx1] = cv2.GC_PR_FGD
    if not (seeds != cv2.GC_PR_FGD).any():
        # The region is the whole frame: GrabCut needs background samples, so the border is
        # probably background.
        seeds[[0, -1], :] = cv2.GC_PR_BGD
        seeds[:, [0, -1]] = cv2.GC_PR_BGD
    radius = max(2, round(0.04 * min(ry1 - ry0, rx1 - rx0)))
    positive = []
    for (px, py), label in zip(prompts.points, prompts.labels, strict=True):
        centre = (
            min(crop.shape[1] - 1, max(0, round((px - cx0) * fx))),
            min(crop.shape[0] - 1, max(0, round((py - cy0) * fy))),
        )
        cv2.circle(seeds, centre, radius, cv2.GC_FGD if label else cv2.GC_BGD, thickness=-1)
        if label:
            positive.append(centre)

    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(
        crop, seeds, None, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK
    )
    fg = ((seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)).astype(np.uint8)
    if positive:
        _, parts = cv2.connectedComponents(fg, connectivity=8)
        clicked = [parts[y, x] for x, y in positive if parts[y, x]]
        fg = np.isin(parts, clicked).astype(np.uint8)
    if shrink < 1:
        fg = cv2.resize(fg * 255, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_LINEAR) >= 128
    out = np.zeros((h, w), bool)
    out[cy0:cy1, cx0:cx1] = fg.astype(bool)
    return out


class GrabCutEngine:
    """OpenCV GrabCut seeded by the box and the points: the engine when SAM is not configured."""

    name = "grabcut"

    def __init__(self) -> None:
        # The next click on the frame skips the decode.
        self._images: _Lru[str, np.ndarray] = _Lru(CACHE_ENTRIES)

    def predict(self, *, frame: Frame, prompts: Prompts) -> MaskResult:
        sha = _content_sha(frame)
        image = self._images.get_or_load(sha, lambda: _decode_bgr(frame))
        height, width = image.shape[:2]
        prompts.check(width=width, height=height)
        # GrabCut has no confidence of its own.
        return _result(grabcut(image, prompts=prompts), score=1.0, engine=self.name)

    def clear(self) -> None:
        self._images.clear()


_sam_engine = SamEngine()
_grabcut_engine = GrabCutEngine()


def engine() -> MaskEngine:
    """SAM when a checkpoint is configured (or the tiny test model), GrabCut otherwise."""
    return _sam_engine if sam_enabled() else _grabcut_engine


def predict_mask(*, frame: Frame, prompts: Prompts) -> MaskResult:
    return engine().predict(frame=frame, prompts=prompts)


def mask_from_rle(rle: dict) -> np.ndarray:
    """The H x W bool mask of a stored COCO RLE."""
    return rle_codec.decode(rle)


def clear_caches() -> None:
    """Forget the loaded embeddings and decoded frames (tests; memory pressure)."""
    _sam_engine.clear()
    _grabcut_engine.clear()
