"""Backbone features per frame, computed once per feature key and cached in FrameFeature.

A frame is cropped to its railcar box when it has one (config.crop_to_railcar), resized whole to
image_size pixels high with its aspect ratio kept (squashing a wide railcar would shrink the small
inclusions further), and normalized with the backbone's own mean and STD
(timm.data.resolve_data_config). Its feature is the backbone's pooled output, or the
average-pooled feature maps of `config.stages`, concatenated.
"""

import io
import logging
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from labeling.framefiles import read_frame
from labeling.models import Frame, Layer
from mlloop.config import ModelConfig, feature_key
from mlloop.inclusion import dense_map
from mlloop.model import build_backbone
from mlloop.models import FrameFeature

logger = logging.getLogger(__name__)

Log = Callable[[str], None]

MAX_ASPECT = 4.0  # wider crops are squeezed to this many times their height
MIN_CROP = 8  # pixels; a smaller railcar box is taken for a bad one and the whole frame used


def crop_box(box: Any, width: int, height: int) -> tuple[int, int, int, int] | None:
    """A railcar box [x_min, y_min, x_max, y_max] clipped to the frame, or None when there is
    no usable one (absent, malformed, or smaller than MIN_CROP pixels once clipped)."""
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        return None
    x0, y0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    x1, y1 = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    if x1 - x0 < MIN_CROP or y1 - y0 < MIN_CROP:
        return None
    return x0, y0, x1, y1


class FeatureExtractor:
    """A frozen backbone and its preprocessing. `images_seen` counts the frames it has run on
    (the feature cache is judged by it)."""

    def __init__(self, config: ModelConfig) -> None:
        from timm.data import resolve_data_config

        self.config = config
        self.key = feature_key(config)
        self.backbone = build_backbone(config)
        data_config = resolve_data_config({}, model=self.backbone)
        self.mean = np.asarray(data_config["mean"], dtype=np.float32)
        self.std = np.asarray(data_config["std"], dtype=np.float32)
        self.stages = config.stages
        with torch.inference_mode():
            probe = torch.zeros(1, 3, config.image_size, config.image_size, device=config.device)
            self.dim = int(self._forward(probe).shape[1])
        self.images_seen = 0

    def preprocess(self, image: Image.Image, railcar_box: Any = None) -> np.ndarray:
        if self.config.crop_to_railcar and railcar_box is not None:
            box = crop_box(railcar_box, *image.size)
            if box is not None:
                image = image.crop(box)
        height = self.config.image_size
        aspect = min(MAX_ASPECT, max(1 / MAX_ASPECT, image.width / image.height))
        size = (max(1, round(height * aspect)), height)
        rgb = image.convert("RGB").resize(size, Image.Resampling.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32) / 255.0
        return ((pixels - self.mean) / self.std).transpose(2, 0, 1)

    def _forward(self, tensor: torch.Tensor) -> torch.Tensor:
        if not self.stages:
            return self.backbone(tensor)
        maps = self.backbone.forward_intermediates(
            tensor, indices=list(self.stages), intermediates_only=True, stop_early=True
        )
        return torch.cat([m.mean(dim=(2, 3)) for m in maps], dim=1)

    def extract_maps(
        self, images: Sequence[Image.Image], railcar_boxes: Sequence[Any] | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pooled features [N, dim] and the dense map [h, w, C] of each image (the hypercolumn
        of ModelConfig.dense_stages, `inclusion.dense_map`), from one forward pass."""
        boxes = railcar_boxes if railcar_boxes is not None else [None] * len(images)
        dense = self.config.dense_indices
        pooled = np.zeros((len(images), self.dim), dtype=np.float32)
        maps: list[np.ndarray] = [np.zeros(0, np.float32)] * len(images)
        with torch.inference_mode():
            for i, (image, box) in enumerate(zip(images, boxes, strict=True)):
                tensor = torch.from_numpy(self.preprocess(image, box))[None].to(self.config.device)
                if self.stages:
                    indices = sorted({*self.stages, *dense})
                    found = self.backbone.forward_intermediates(
                        tensor, indices=indices, intermediates_only=True, stop_early=True
                    )
                    by_stage = dict(zip(indices, found, strict=True))
                    vector = torch.cat([by_stage[s].mean(dim=(2, 3)) for s in self.stages], dim=1)
                else:
                    vector = self.backbone(tensor)
                    found = self.backbone.forward_intermediates(
                        tensor, indices=list(dense), intermediates_only=True, stop_early=True
                    )
                    by_stage = dict(zip(dense, found, strict=True))
                feature_map = dense_map(by_stage, self.config.dense_stages, self.config.dense_stage)
                pooled[i] = vector[0].float().cpu().numpy()
                maps[i] = feature_map[0].permute(1, 2, 0).float().cpu().numpy()
                self.images_seen += 1
        return pooled, maps

    def extract(
        self, images: Sequence[Image.Image], railcar_boxes: Sequence[Any] | None = None
    ) -> np.ndarray:
        """[N, dim] float32 features, in batches of config.feature_batch, without gradients.
        `railcar_boxes`, one per image (None for none), are the crops."""
        boxes = railcar_boxes if railcar_boxes is not None else [None] * len(images)
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        batch = self.config.feature_batch
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                part = zip(images[start : start + batch], boxes[start : start + batch], strict=True)
                arrays = [self.preprocess(im, box) for im, box in part]
                # Frames of different aspect ratios go through in groups of equal shape.
                by_shape: dict[tuple[int, ...], list[int]] = {}
                for i, array in enumerate(arrays):
                    by_shape.setdefault(array.shape, []).append(i)
                for members in by_shape.values():
                    chunk = np.stack([arrays[i] for i in members])
                    tensor = torch.from_numpy(chunk).to(self.config.device)
                    rows = [start + i for i in members]
                    out[rows] = self._forward(tensor).float().cpu().numpy()
                self.images_seen += len(arrays)
        return out


_extractors: dict[str, FeatureExtractor] = {}
_extractors_lock = threading.Lock()


def extractor(config: ModelConfig) -> FeatureExtractor:
    """One extractor per feature key and process: building a backbone takes seconds."""
    key = feature_key(config)
    with _extractors_lock:
        if key not in _extractors:
            _extractors.clear()  # one backbone in memory at a time
            _extractors[key] = FeatureExtractor(config)
        return _extractors[key]


def load_image(frame: Frame) -> Image.Image:
    """Decode a stored frame; OSError (FrameFileMissing when its file is gone) or ValueError,
    with a reason, when it cannot be read."""
    data = read_frame(frame=frame)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ValueError(f"cannot decode: {exc}") from exc
    return image


def decode_vector(row: FrameFeature) -> np.ndarray | None:
    vector = np.frombuffer(bytes(row.vector), dtype="<f4")
    return vector.astype(np.float32) if vector.size == row.dim else None


def frame_features(
    frames: Iterable[Frame], config: ModelConfig, *, log: Log | None = None
) -> dict[int, np.ndarray]:
    """Features of `frames` by frame id: cached ones read in one query, the rest computed and
    stored. A frame whose file is missing or undecodable is left out, with a log line."""
    say = log or logger.warning
    frames = list(frames)
    key = feature_key(config)
    found: dict[int, np.ndarray] = {}
    damaged = []
    for row in FrameFeature.objects.filter(frame_id__in=[f.pk for f in frames], feature_key=key):
        vector = decode_vector(row)
        if vector is None:
            damaged.append(row.pk)
        else:
            found[row.frame_id] = vector
    if damaged:
        say(f"{len(damaged)} cached features of the wrong length dropped, recomputing them")
        FrameFeature.objects.filter(pk__in=damaged).delete()
    missing = [f for f in frames if f.pk not in found]
    if not missing:
        return found
    model = extractor(config)
    batch = config.feature_batch * 4
    for start in range(0, len(missing), batch):
        readable, images = [], []
        for frame in missing[start : start + batch]:
            try:
                images.append(load_image(frame))
            except (OSError, ValueError) as exc:
                say(f"frame {frame.pk} skipped: {exc}")
                continue
            readable.append(frame)
        if not readable:
            continue
        vectors = model.extract(images, [frame.railcar_box for frame in readable])
        store_features(readable, vectors, key=key)
        found.update({frame.pk: vector for frame, vector in zip(readable, vectors, strict=True)})
    return found


def store_features(frames: Sequence[Frame], vectors: np.ndarray, *, key: str) -> None:
    """Cache `vectors` (one per frame) under `key`. ignore_conflicts: a concurrent run that
    computed the same frame first wins; the vectors are equal (same key, same frame)."""
    FrameFeature.objects.bulk_create(
        [
            FrameFeature(
                frame=frame,
                feature_key=key,
                dim=int(vector.shape[0]),
                vector=vector.astype("<f4").tobytes(),
            )
            for frame, vector in zip(frames, vectors, strict=True)
        ],
        ignore_conflicts=True,
    )


def railcar_features(
    railcar_ids: Iterable[int], config: ModelConfig, *, log: Log | None = None
) -> dict[int, np.ndarray]:
    """Each railcar's bag: one feature vector per layer (its keyframe's), in layer order.
    Layers without a keyframe or with an unreadable one are left out; a railcar with no usable
    layer is absent from the result."""
    rows = list(
        Layer.objects.filter(railcar_id__in=list(railcar_ids), keyframe__isnull=False)
        .order_by("railcar_id", "index")
        .values_list("railcar_id", "keyframe_id")
    )
    frames = Frame.objects.filter(pk__in=[frame_id for _, frame_id in rows])
    frames = frames.only("pk", "file", "railcar_box")
    vectors = frame_features(frames, config, log=log)
    layers: dict[int, list[np.ndarray]] = {}
    for railcar_id, frame_id in rows:
        if frame_id in vectors:
            layers.setdefault(railcar_id, []).append(vectors[frame_id])
    return {railcar_id: np.stack(found) for railcar_id, found in layers.items()}
