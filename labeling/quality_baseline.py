"""A fixed camera's own normal, from its history: the per-camera baseline of the haze check.

Pure functions, no Django (labeling/camera_baselines.py stores and serves the baselines).

The haze measure (quality_measures.haze) reads an evenly lit surface with no deep shadows (a
brick wall, the lunar plain, a pile of fines under overcast light) exactly like a veil: from one
frame the two cannot be told apart. A fixed camera's history can. In the airlight model a veil of
opacity a over the clear view J gives I = (1 - a) J + a A, and the measure, a ratio of the darkest
pixels to the brightest, moves from the clear view's h0 to about h0 + a (1 - h0) when the airlight
A is about as bright as the scene's highlights: so (h - h0) / (1 - h0) estimates the veil a frame
adds to what this camera normally sees, and the check holds that estimate to `max_veil`.
Equivalently, and so that a stored check keeps one value and one threshold, the camera's haze
limit becomes h0 + max_veil (1 - h0). Verified on the calibration photographs at 1920x1080
(docs/quality-checks.md): the estimate recovers a = 0.2, 0.4, 0.6, 0.8 within 0.1 on ten of the
eleven (reading high on the lunar plain, whose views differ most), and reads 0.21 at most on
their clear frames, 0.38 or more at a = 0.4.

h0 is a low quantile of the camera's recent haze values, not their median: a dusty stretch (a
morning of dust, a week of smoke) fills the top of the history and does not move the bottom,
so it does not become the normal. It is capped at `max_haze_baseline`: a camera whose clear views
read hazier than that is not excused (it may be always veiled: a dirty window). A camera with
too little history (a new one) keeps the absolute `max_haze`.

Occupancy, for frames without a railcar box only: there the value is the centre window's share
of the frame (a constant) times the share of it that shows texture, and how much texture a loaded
railcar shows in that window depends on what the camera looks at. The camera's usual texture
share t0 is the 75th percentile of its recent box-less occupancy values (what its loaded railcars
read) over the window's share, at least `min_occupancy_normal`; its box-less frames are held to
`min_occupancy` x t0, which is the absolute check on texture / t0. Frames with a box keep the
absolute `min_occupancy`: there the railcar's share of the frame varies (a railcar out of view
reads low), and the stored value alone cannot say which factor is low.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from labeling.quality import QualityThresholds
from labeling.quality_measures import CENTRE_WINDOW


@dataclass(frozen=True)
class HistoryRule:
    """Policy: which history defines a camera's normal (labeling/policies.py registers these)."""

    # The camera's last checked frames read: about ten unloadings, so that a lens cleaned or a
    # camera moved becomes the new normal within a day or two of unloading.
    frames: int = 500
    # Below this a camera has no baseline and the absolute `max_haze` holds. 20 frames are one
    # or two unloadings: enough for the low quantile to sit on clear frames, not on one outlier.
    min_frames: int = 20
    # The camera's clear view: the 15th percentile of its haze values. A hazy stretch shorter
    # than 85 % of the history leaves it where it was (tested).
    quantile: float = 0.15


# What a camera's loaded railcars read without a box: the 75th percentile of its box-less
# occupancy values. High, because the last grabs of every unloading show an emptying railcar.
OCCUPANCY_QUANTILE = 0.75
CENTRE_SHARE = (CENTRE_WINDOW[2] - CENTRE_WINDOW[0]) * (CENTRE_WINDOW[3] - CENTRE_WINDOW[1])


@dataclass(frozen=True)
class CameraBaseline:
    """What a camera's history says about its normal view."""

    haze: float | None  # the clear-view haze h0 (the low quantile); None without history
    occupancy: float | None  # loaded-railcar share of its box-less frames (OCCUPANCY_QUANTILE)
    frames: int  # how many frames the haze baseline was computed from
    occupancy_frames: int = 0  # how many box-less frames the occupancy baseline was


def baseline_from_history(
    *, haze: Sequence[float], occupancy: Sequence[float], rule: HistoryRule
) -> CameraBaseline:
    """The baseline of a camera from its haze values and the occupancy values of its frames
    without a railcar box, each newest first, from its last `rule.frames` checked frames (values
    that are not finite are left out)."""
    hazes = [v for v in haze[: rule.frames] if math.isfinite(v)]
    occupancies = [v for v in occupancy[: rule.frames] if math.isfinite(v)]
    return CameraBaseline(
        haze=float(np.quantile(hazes, rule.quantile)) if hazes else None,
        occupancy=float(np.quantile(occupancies, OCCUPANCY_QUANTILE)) if occupancies else None,
        frames=len(hazes),
        occupancy_frames=len(occupancies),
    )


def haze_limit(baseline_haze: float, thresholds: QualityThresholds) -> float:
    """The haze a frame of this camera may read: its capped clear view plus `max_veil` of the
    way from there to 1."""
    h0 = _clear_view(baseline_haze, thresholds)
    return min(1.0, h0 + thresholds.max_veil * (1.0 - h0))


def veil(value: float, baseline_haze: float, thresholds: QualityThresholds) -> float:
    """The veil a frame reading `value` adds to the camera's (capped) clear view."""
    h0 = _clear_view(baseline_haze, thresholds)
    return (value - h0) / (1.0 - h0) if h0 < 1.0 else 0.0


def _clear_view(baseline_haze: float, thresholds: QualityThresholds) -> float:
    """The camera's clear-view haze as the checks use it: capped at `max_haze_baseline`."""
    return min(max(baseline_haze, 0.0), thresholds.max_haze_baseline)


def occupancy_limit(baseline_occupancy: float, thresholds: QualityThresholds) -> float:
    """The occupancy a box-less frame of this camera must reach: `min_occupancy` times the
    camera's usual texture share, at least `min_occupancy_normal` and at most 1."""
    normal = min(1.0, max(baseline_occupancy / CENTRE_SHARE, thresholds.min_occupancy_normal))
    return thresholds.min_occupancy * normal


def usable(baseline: CameraBaseline | None, rule: HistoryRule) -> bool:
    """Whether the camera has enough history for its own haze limit."""
    return baseline is not None and baseline.haze is not None and baseline.frames >= rule.min_frames


def usable_occupancy(baseline: CameraBaseline | None, rule: HistoryRule) -> bool:
    """Whether it has enough box-less frames for its own occupancy limit."""
    return (
        baseline is not None
        and baseline.occupancy is not None
        and baseline.occupancy_frames >= rule.min_frames
    )


def camera_thresholds(
    thresholds: QualityThresholds,
    baseline: CameraBaseline | None,
    rule: HistoryRule,
    *,
    boxed: bool,
) -> QualityThresholds:
    """`thresholds` for one frame of one camera: `max_haze` replaced by the limit its baseline
    implies, and for a frame without a railcar box (`boxed` False) `min_occupancy` too; each
    unchanged when the camera has too little history for it (a new camera)."""
    changes = {}
    if usable(baseline, rule):
        changes["max_haze"] = haze_limit(baseline.haze, thresholds)  # type: ignore[union-attr,arg-type]
    if not boxed and usable_occupancy(baseline, rule):
        changes["min_occupancy"] = occupancy_limit(baseline.occupancy, thresholds)  # type: ignore[union-attr,arg-type]
    return replace(thresholds, **changes) if changes else thresholds
