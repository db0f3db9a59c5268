"""Split an unloading into layers (magnet grabs) and pick each layer's keyframe.

Seed 000, section 6.2: "temporal layers are delineated by thresholding the IoU between magnet and
railcar masks over time, with keyframes selected near the IoU peak". We have boxes, not masks.
"""

from collections.abc import Sequence

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
