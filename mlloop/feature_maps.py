"""Keyframe feature maps, the annotators' masks as cell targets, and the bags a model reads.

A model trained with mask supervision (mlloop.inclusion) reads, per layer, its keyframe's pooled
feature followed by the inclusion head's summary of the keyframe's feature map. The maps are
cached per map key in FrameFeatureMap (float16), so scoring and retraining run the backbone once
per keyframe. `model_bags` is the one place that builds the bags a trained model scores, so the
learning loop, the live estimates and the explanations read the same input.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from labeling import rle
from labeling.annotation_models import Assignment, Mask
from labeling.models import Frame, Layer
from mlloop.config import ModelConfig, map_key
from mlloop.features import (
    Log,
    crop_box,
    extractor,
    frame_features,
    load_image,
    logger,
    store_features,
)
from mlloop.inclusion import InclusionHead, cell_targets, summary
from mlloop.models import FrameFeatureMap

# Keyframes whose masks teach the inclusion head at most (a seeded sample beyond): their maps are
# held in memory together (about 130-220 KB each as float32).
MAX_HEAD_KEYFRAMES = 2000
# Keyframes whose feature maps are held at once when building bags.
MAP_CHUNK = 256


def keyframe_rows(railcar_ids: Iterable[int]) -> list[tuple[int, int]]:
    """(railcar id, keyframe id) of every layer with a keyframe, in railcar and layer order."""
    return list(
        Layer.objects.filter(railcar_id__in=list(railcar_ids), keyframe__isnull=False)
        .order_by("railcar_id", "index")
        .values_list("railcar_id", "keyframe_id")
    )


def _decode(row: FrameFeatureMap) -> np.ndarray | None:
    data = np.frombuffer(bytes(row.data), dtype="<f2")
    if data.size != row.height * row.width * row.channels:
        return None
    return data.reshape(row.height, row.width, row.channels).astype(np.float32)


def frame_maps(
    frames: Iterable[Frame], config: ModelConfig, *, log: Log | None = None
) -> dict[int, np.ndarray]:
    """Feature maps [h, w, C] of `frames` by frame id, cached ones read, the rest computed (with
    their pooled features, stored too) and stored. Unreadable frames are left out, logged."""
    say = log or logger.warning
    frames = list(frames)
    key = map_key(config)
    found: dict[int, np.ndarray] = {}
    for row in FrameFeatureMap.objects.filter(frame_id__in=[f.pk for f in frames], feature_key=key):
        decoded = _decode(row)
        if decoded is not None:
            found[row.frame_id] = decoded
    missing = [f for f in frames if f.pk not in found]
    if not missing:
        return found
    model = extractor(config)
    for start in range(0, len(missing), config.feature_batch):
        readable, images = [], []
        for frame in missing[start : start + config.feature_batch]:
            try:
                images.append(load_image(frame))
            except (OSError, ValueError) as exc:
                say(f"frame {frame.pk} skipped: {exc}")
                continue
            readable.append(frame)
        if not readable:
            continue
        pooled, maps = model.extract_maps(images, [frame.railcar_box for frame in readable])
        # ignore_conflicts: a concurrent run that computed the same frame first wins (equal).
        FrameFeatureMap.objects.bulk_create(
            [
                FrameFeatureMap(
                    frame=frame,
                    feature_key=key,
                    height=fmap.shape[0],
                    width=fmap.shape[1],
                    channels=fmap.shape[2],
                    data=fmap.astype("<f2").tobytes(),
                )
                for frame, fmap in zip(readable, maps, strict=True)
            ],
            ignore_conflicts=True,
        )
        store_features(readable, pooled, key=model.key)
        found.update({frame.pk: fmap for frame, fmap in zip(readable, maps, strict=True)})
    return found


@dataclass
class _MaskSources:
    """What the masks of some railcars say, still encoded: per railcar the assignments that
    drew (and were submitted), per keyframe its masks."""

    rows: list[tuple[int, int]]
    drawn: dict[int, set[int]]
    encoded: dict[int, list[tuple[int, dict]]]


def _mask_sources(railcar_ids: Iterable[int]) -> _MaskSources:
    rows = keyframe_rows(railcar_ids)
    keyframes = {frame_id: railcar_id for railcar_id, frame_id in rows}
    masks = Mask.objects.filter(
        frame_id__in=list(keyframes), assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment_id", "assignment__railcar_id", "frame_id", "rle")
    sources = _MaskSources(rows, {}, {})
    for assignment_id, railcar_id, frame_id, encoded in masks:
        if keyframes.get(frame_id) == railcar_id:
            sources.drawn.setdefault(railcar_id, set()).add(assignment_id)
            sources.encoded.setdefault(frame_id, []).append((assignment_id, encoded))
    return sources


def _coverage(
    drawn: set[int], encoded: list[tuple[int, dict]], shape: tuple[int, int]
) -> np.ndarray:
    """The share of `drawn` raters who marked each pixel (an undecodable mask counts as none)."""
    marked: dict[int, np.ndarray] = {}
    for assignment_id, data in encoded:
        try:
            pixels = rle.decode(data)
        except (ValueError, KeyError, TypeError):
            continue
        if pixels.shape != shape:
            continue
        marked[assignment_id] = (
            pixels | marked[assignment_id] if assignment_id in marked else pixels
        )
    total = np.zeros(shape, np.float32)
    for pixels in marked.values():
        total += pixels
    return total / len(drawn)


def mask_coverage(railcar_ids: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """(keyframe id, the share of the railcar's mask-drawing raters who marked each pixel): the
    soft target of the inclusion head, one keyframe at a time (a full-size float map each). A
    rater counts on a railcar once they drew at least one mask on any of its keyframes and
    submitted a rating (no mask on a keyframe then means "no inclusion here"). Keyframes of
    railcars without such a rater are left out."""
    sources = _mask_sources(railcar_ids)
    frames = Frame.objects.filter(pk__in=[f for r, f in sources.rows if r in sources.drawn])
    sizes = {pk: (h, w) for pk, h, w in frames.values_list("pk", "height", "width")}
    for railcar_id, frame_id in sources.rows:
        drawn, shape = sources.drawn.get(railcar_id), sizes.get(frame_id)
        if not drawn or not shape or not all(shape):
            continue
        yield frame_id, _coverage(drawn, sources.encoded.get(frame_id, []), shape)


def head_training_data(
    railcar_ids: Iterable[int], config: ModelConfig, *, log: Log | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Feature maps and cell targets of the keyframes of `railcar_ids` that carry masks, at most
    MAX_HEAD_KEYFRAMES of them (a seeded sample), so memory stays bounded on a large dataset."""
    sources = _mask_sources(railcar_ids)
    masked = [f for r, f in sources.rows if r in sources.drawn]
    if len(masked) > MAX_HEAD_KEYFRAMES:
        rng = np.random.default_rng(config.seed)
        masked = sorted(rng.choice(masked, size=MAX_HEAD_KEYFRAMES, replace=False).tolist())
    chosen = set(masked)
    frames = {
        f.pk: f
        for f in Frame.objects.filter(pk__in=masked).only(
            "pk", "file", "railcar_box", "height", "width"
        )
    }
    maps = frame_maps(frames.values(), config, log=log)
    inputs, targets = [], []
    for railcar_id, frame_id in sources.rows:
        frame, fmap = frames.get(frame_id), maps.get(frame_id)
        if frame_id not in chosen or frame is None or fmap is None:
            continue
        if not frame.height or not frame.width:
            continue
        cover = _coverage(
            sources.drawn[railcar_id],
            sources.encoded.get(frame_id, []),
            (frame.height, frame.width),
        )
        box = crop_box(frame.railcar_box, frame.width, frame.height)
        if config.crop_to_railcar and box is not None:
            x0, y0, x1, y1 = box
            cover = cover[y0:y1, x0:x1]
        inputs.append(fmap)
        targets.append(cell_targets(cover, fmap.shape[:2]))
    return inputs, targets


def frame_vectors(
    frames: Iterable[Frame],
    config: ModelConfig,
    *,
    inclusion: InclusionHead | None = None,
    log: Log | None = None,
) -> dict[int, np.ndarray]:
    """Each keyframe's layer feature as a model reads it, by frame id: the pooled feature,
    followed by the inclusion summary when the model has an inclusion head. Unreadable frames
    are left out."""
    frames = list(frames)
    if inclusion is None:
        return frame_features(frames, config, log=log)
    out: dict[int, np.ndarray] = {}
    # The maps of a chunk at a time: a few hundred KB each as float32. The maps first: computing
    # a missing map stores its pooled feature too, so the backbone runs once per new keyframe.
    for start in range(0, len(frames), MAP_CHUNK):
        chunk = frames[start : start + MAP_CHUNK]
        maps = frame_maps(chunk, config, log=log)
        vectors = frame_features([f for f in chunk if f.pk in maps], config, log=log)
        out.update(
            {
                pk: np.concatenate([vectors[pk], summary(inclusion, fmap)])
                for pk, fmap in maps.items()
                if pk in vectors
            }
        )
    return out


def model_bags(
    railcar_ids: Iterable[int],
    config: ModelConfig,
    *,
    inclusion: InclusionHead | None = None,
    log: Log | None = None,
) -> dict[int, np.ndarray]:
    """Each railcar's bag as a model reads it: one `frame_vectors` row per layer with a
    readable keyframe, in layer order; a railcar with none is absent."""
    rows = keyframe_rows(railcar_ids)
    frames = Frame.objects.filter(pk__in=[f for _, f in rows]).only("pk", "file", "railcar_box")
    vectors = frame_vectors(frames, config, inclusion=inclusion, log=log)
    layers: dict[int, list[np.ndarray]] = {}
    for railcar_id, frame_id in rows:
        if frame_id in vectors:
            layers.setdefault(railcar_id, []).append(vectors[frame_id])
    return {railcar_id: np.stack(found) for railcar_id, found in layers.items()}
