"""Keyframe feature maps, the annotators' masks as cell targets, and the bags a model reads.

A model trained with mask supervision (mlloop.inclusion) reads, per layer, its keyframe's pooled
feature followed by the inclusion head's summary of the keyframe's feature map. The maps are
cached per map key in FrameFeatureMap (float16), so scoring and retraining run the backbone once
per keyframe. `model_bags` is the one place that builds the bags a trained model scores, so the
learning loop, the live estimates and the explanations read the same input.
"""

from collections.abc import Iterable

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


def mask_coverage(railcar_ids: Iterable[int]) -> dict[int, np.ndarray]:
    """Per keyframe (by frame id), the share of the railcar's mask-drawing raters who marked each
    pixel: the soft target of the inclusion head. A rater counts on a railcar once they drew at
    least one mask on any of its keyframes and submitted a rating (no mask on a keyframe then
    means "no inclusion here"). Keyframes of railcars without such a rater are absent."""
    rows = keyframe_rows(railcar_ids)
    keyframes = {frame_id: railcar_id for railcar_id, frame_id in rows}
    masks = Mask.objects.filter(
        frame_id__in=list(keyframes), assignment__status=Assignment.Status.SUBMITTED
    ).values_list("assignment_id", "assignment__railcar_id", "frame_id", "rle")
    raters: dict[int, set[int]] = {}
    union: dict[tuple[int, int], np.ndarray] = {}
    for assignment_id, railcar_id, frame_id, encoded in masks:
        if keyframes.get(frame_id) != railcar_id:
            continue
        try:
            pixels = rle.decode(encoded)
        except (ValueError, KeyError, TypeError):
            continue
        raters.setdefault(railcar_id, set()).add(assignment_id)
        key = (assignment_id, frame_id)
        union[key] = pixels if key not in union else union[key] | pixels
    sizes = {
        pk: (height, width)
        for pk, height, width in Frame.objects.filter(pk__in=list(keyframes)).values_list(
            "pk", "height", "width"
        )
    }
    out: dict[int, np.ndarray] = {}
    for railcar_id, frame_id in rows:
        drawn = raters.get(railcar_id)
        if not drawn:
            continue
        marked = [union[(a, frame_id)] for a in drawn if (a, frame_id) in union]
        shape = marked[0].shape if marked else sizes.get(frame_id, (None, None))
        if not all(shape):
            continue
        total = np.zeros(shape, np.float32)
        for pixels in marked:
            if pixels.shape == total.shape:
                total += pixels
        out[frame_id] = total / len(drawn)
    return out


def head_training_data(
    railcar_ids: Iterable[int], config: ModelConfig, *, log: Log | None = None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Feature maps and cell targets of the keyframes of `railcar_ids` that carry masks."""
    coverage = mask_coverage(railcar_ids)
    frames = list(Frame.objects.filter(pk__in=list(coverage)).only("pk", "file", "railcar_box"))
    maps = frame_maps(frames, config, log=log)
    inputs, targets = [], []
    for frame in frames:
        fmap, cover = maps.get(frame.pk), coverage[frame.pk]
        if fmap is None or cover.size == 0:
            continue
        box = crop_box(frame.railcar_box, cover.shape[1], cover.shape[0])
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
    vectors = frame_features(frames, config, log=log)
    if inclusion is None:
        return vectors
    maps = frame_maps(frames, config, log=log)
    return {
        pk: np.concatenate([vector, summary(inclusion, maps[pk])])
        for pk, vector in vectors.items()
        if pk in maps
    }


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
