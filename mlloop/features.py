"""Backbone features per frame, computed once per feature key and cached in FrameFeature.

Images are resized to image_size x image_size whole (not cropped: a crop would cut the edges of
the railcar, where scrap lies too) and normalized with the backbone's own mean and STD
(timm.data.resolve_data_config).
"""

import io
import logging
import threading
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from django.core.files.storage import default_storage
from PIL import Image, UnidentifiedImageError

from labeling.models import Frame, Layer
from mlloop.config import ModelConfig, feature_key
from mlloop.models import FrameFeature

logger = logging.getLogger(__name__)

Log = Callable[[str], None]


class FeatureExtractor:
    """A frozen backbone and its preprocessing. `images_seen` counts the frames it has run on
    (the feature cache is judged by it)."""

    def __init__(self, config: ModelConfig) -> None:
        from timm.data import resolve_data_config

        from mlloop.model import build_backbone

        self.config = config
        self.key = feature_key(config)
        self.backbone = build_backbone(config)
        data_config = resolve_data_config({}, model=self.backbone)
        self.mean = np.asarray(data_config["mean"], dtype=np.float32)
        self.std = np.asarray(data_config["std"], dtype=np.float32)
        self.dim = int(self.backbone.num_features)
        self.images_seen = 0

    def preprocess(self, image: Image.Image) -> np.ndarray:
        size = self.config.image_size
        rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
        pixels = np.asarray(rgb, dtype=np.float32) / 255.0
        return ((pixels - self.mean) / self.std).transpose(2, 0, 1)

    def extract(self, images: Sequence[Image.Image]) -> np.ndarray:
        """[n, dim] float32 features, in batches of config.feature_batch, without gradients."""
        out = np.zeros((len(images), self.dim), dtype=np.float32)
        batch = self.config.feature_batch
        with torch.inference_mode():
            for start in range(0, len(images), batch):
                chunk = np.stack([self.preprocess(im) for im in images[start : start + batch]])
                tensor = torch.from_numpy(chunk).to(self.config.device)
                out[start : start + len(chunk)] = self.backbone(tensor).float().cpu().numpy()
                self.images_seen += len(chunk)
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
    """Decode a stored frame; OSError/ValueError (with a reason) when it cannot be read."""
    if not frame.file:
        raise OSError("no stored file")
    try:
        with default_storage.open(frame.file.name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise OSError("file missing from storage") from exc
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
        vectors = model.extract(images)
        # ignore_conflicts: a concurrent run that computed the same frame first wins; the
        # vectors are equal (same key, same frame).
        FrameFeature.objects.bulk_create(
            [
                FrameFeature(
                    frame=frame,
                    feature_key=key,
                    dim=model.dim,
                    vector=vector.astype("<f4").tobytes(),
                )
                for frame, vector in zip(readable, vectors, strict=True)
            ],
            ignore_conflicts=True,
        )
        found.update({frame.pk: vector for frame, vector in zip(readable, vectors, strict=True)})
    return found


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
    frames = Frame.objects.filter(pk__in=[frame_id for _, frame_id in rows]).only("pk", "file")
    vectors = frame_features(frames, config, log=log)
    layers: dict[int, list[np.ndarray]] = {}
    for railcar_id, frame_id in rows:
        if frame_id in vectors:
            layers.setdefault(railcar_id, []).append(vectors[frame_id])
    return {railcar_id: np.stack(found) for railcar_id, found in layers.items()}
