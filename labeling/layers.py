"""Split an unloading into layers (magnet grabs), pick each layer's keyframe, and list a
railcar's layers as the viewers show them.

Seed 000, section 6.2: "temporal layers are delineated by thresholding the IoU between magnet and
railcar masks over time, with keyframes selected near the IoU peak". We have boxes, not masks.
Ingest splits the layers; the keyframe is picked once the quality checks have settled which
frames are eligible (`pick_keyframes`, from `pipeline.conclude_checks`, again after a re-judge).
"""

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from labeling.models import Frame, Layer, Railcar

Box = Sequence[float]


def box_iou(a: Box | None, b: Box | None) -> float:
    """IoU of two [x_min, y_min, x_max, y_max] boxes; 0 when either is missing."""
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def runs_above(values: Sequence[float], *, threshold: float, max_gap: int) -> list[range]:
    """Index ranges where `values` stay >= threshold; dips of up to `max_gap` samples between
    two such stretches do not split them (a detector misses the magnet for a frame)."""
    runs: list[range] = []
    start: int | None = None
    last_above = -1
    for i, value in enumerate(values):
        if value < threshold:
            continue
        if start is not None and i - last_above - 1 > max_gap:
            runs.append(range(start, last_above + 1))
            start = None
        if start is None:
            start = i
        last_above = i
    if start is not None:
        runs.append(range(start, last_above + 1))
    return runs


def keyframe_position(
    positions: Sequence[int], *, ious: Sequence[float | None], eligible: Sequence[bool]
) -> int | None:
    """The eligible position nearest the IoU peak among `positions` (time-ordered).

    Without IoU values the layer's middle stands in for the peak. Ties go to the higher IoU,
    then the earlier frame. None when no frame of the layer is eligible.
    """
    if not positions:
        return None
    known = [p for p in positions if ious[p] is not None]
    peak = max(known, key=lambda p: (ious[p], -p)) if known else positions[len(positions) // 2]
    candidates = [p for p in positions if eligible[p]]
    if not candidates:
        return None
    return min(candidates, key=lambda p: (abs(p - peak), -(ious[p] or 0.0), p))


def pick_keyframes(*, railcar: Railcar) -> int:
    """Set each layer's keyframe to its eligible frame nearest the IoU peak (none for a layer
    without an eligible frame); return how many layers have one."""
    frames = list(railcar.frames.order_by("index"))
    ious = [f.iou for f in frames]
    eligible = [f.quality == Frame.Quality.ELIGIBLE for f in frames]
    members: dict[int, list[int]] = {}
    for position, frame in enumerate(frames):
        if frame.layer_id is not None:
            members.setdefault(frame.layer_id, []).append(position)
    layers = list(railcar.layers.all())
    for layer in layers:
        key = keyframe_position(members.get(layer.pk, []), ious=ious, eligible=eligible)
        layer.keyframe_id = frames[key].pk if key is not None else None
    Layer.objects.bulk_update(layers, ["keyframe"])
    return sum(1 for layer in layers if layer.keyframe_id is not None)


@dataclass(frozen=True)
class LayerFrames:
    index: int
    frames: list[Frame]  # in time order, but the keyframe first


def layers_with_frames(*, railcar_id: int, also: Collection[int] = ()) -> list[LayerFrames]:
    """The railcar's layers that have frames to show, in order, each with its eligible frames,
    the keyframe first: what the annotator's workspace and the senior's case page show.

    `also`: ids of frames to show even though they are no longer eligible (a rater marked them
    before a re-judge). Frames outside any layer are never shown. (The frames' `layer` is not
    loaded: the viewers need each frame's uid and size, in the order given here.)
    """
    by_layer: dict[int, list[Frame]] = {}
    keyframe_of: dict[int, int | None] = {}
    for frame, layer_index, keyframe_id in _frames_shown(railcar_id=railcar_id, also=also):
        by_layer.setdefault(layer_index, []).append(frame)
        keyframe_of[layer_index] = keyframe_id
    return [
        LayerFrames(
            index=index,
            frames=sorted(members, key=lambda f, i=index: (f.pk != keyframe_of[i], f.index)),
        )
        for index, members in sorted(by_layer.items())
    ]


def _frames_shown(
    *, railcar_id: int, also: Collection[int]
) -> Iterator[tuple[Frame, int, int | None]]:
    """(frame, its layer's index, that layer's keyframe id), by layer index then frame index."""
    if connection.vendor == "postgresql":
        # Written out: every lease's answer runs it, and compiling the ORM's version of this
        # join took three times as long as PostgreSQL took to run it.
        frames = Frame.objects.raw(
            _FRAMES_SHOWN, [railcar_id, Frame.Quality.ELIGIBLE, [int(pk) for pk in also]]
        )
        return ((f, f.layer_index, f.layer_keyframe_id) for f in frames)
    shown = Q(quality=Frame.Quality.ELIGIBLE)
    if also:
        shown |= Q(pk__in=list(also))
    frames = (
        Frame.objects.filter(shown, railcar_id=railcar_id, layer__isnull=False)
        .select_related("layer")
        .order_by("layer__index", "index")
    )
    return ((f, f.layer.index, f.layer.keyframe_id) for f in frames)


_FRAMES_SHOWN = """
    SELECT f.*, l.index AS layer_index, l.keyframe_id AS layer_keyframe_id
      FROM labeling_frame f JOIN labeling_layer l ON l.id = f.layer_id
     WHERE f.railcar_id = %s AND (f.quality = %s OR f.id = ANY(%s))
     ORDER BY l.index, f.index
"""
