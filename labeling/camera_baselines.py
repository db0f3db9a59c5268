"""Per-camera quality baselines: computed from the stored checks, served to the checks.

A fixed camera's recent history defines its normal view (labeling/quality_baseline.py says how
and why). The baselines are stored, one row per (line, camera), and refreshed by a periodic task
(`refresh_camera_baselines`, hourly) rather than computed while a railcar is checked: the check
then costs one indexed lookup per camera and railcar, whatever the history's length, every frame
of a refresh period is judged against the same normal (a verdict does not depend on the order in
which railcars arrived), and the operations page shows exactly the baseline the checks use.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from labeling import quality_baseline
from labeling.models import CameraBaseline, Frame, FrameCheck, Railcar
from labeling.policies import history_rule, quality_thresholds
from labeling.quality import QualityThresholds
from labeling.quality_baseline import HistoryRule

Key = tuple[str, str]  # (line, camera)


def _history(*, line: str, camera: str, rule: HistoryRule) -> quality_baseline.CameraBaseline:
    """The baseline of one camera from the checks of its last `rule.frames` checked frames."""
    recent = list(
        Frame.objects.filter(railcar__line=line, camera=camera)
        .exclude(quality=Frame.Quality.PENDING)
        .order_by("-captured_at", "-id")
        .values_list("pk", "railcar_box")[: rule.frames]
    )
    boxless = {pk for pk, box in recent if box is None}
    values: dict[str, dict[int, float]] = {"haze": {}, "occupancy": {}}
    for frame_id, name, value in (
        FrameCheck.objects.filter(
            frame_id__in=[pk for pk, _ in recent], name__in=values, value__isnull=False
        )
        .order_by()
        .values_list("frame_id", "name", "value")
    ):
        values[name][frame_id] = value
    return quality_baseline.baseline_from_history(
        haze=[values["haze"][pk] for pk, _ in recent if pk in values["haze"]],
        # Occupancy reads differently with a box (quality_baseline): box-less frames only.
        occupancy=[
            values["occupancy"][pk]
            for pk, _ in recent
            if pk in boxless and pk in values["occupancy"]
        ],
        rule=rule,
    )


def refresh_camera_baselines() -> int:
    """Recompute every camera's baseline from its recent checks; returns how many cameras.
    Re-running is harmless: each row is overwritten with what the history says now."""
    rule = history_rule()
    # The railcars' cameras: a table thirty times smaller than the frames'. A frame that names
    # another camera than its railcar's is rare; a camera seen only that way gets no baseline
    # and keeps the absolute thresholds.
    pairs = sorted(set(Railcar.objects.values_list("line", "camera").distinct()))
    now = timezone.now()
    for line, camera in pairs:
        found = _history(line=line, camera=camera, rule=rule)
        with transaction.atomic():
            CameraBaseline.objects.update_or_create(
                line=line,
                camera=camera,
                defaults={
                    "haze": found.haze,
                    "occupancy": found.occupancy,
                    "frames": found.frames,
                    "occupancy_frames": found.occupancy_frames,
                    "computed_at": now,
                },
            )
    return len(pairs)


def _as_baseline(row: CameraBaseline) -> quality_baseline.CameraBaseline:
    return quality_baseline.CameraBaseline(
        haze=row.haze,
        occupancy=row.occupancy,
        frames=row.frames,
        occupancy_frames=row.occupancy_frames,
    )


def baseline_of(*, line: str, camera: str) -> quality_baseline.CameraBaseline | None:
    row = CameraBaseline.objects.filter(line=line, camera=camera).first()
    return None if row is None else _as_baseline(row)


def all_baselines() -> dict[Key, quality_baseline.CameraBaseline]:
    return {(r.line, r.camera): _as_baseline(r) for r in CameraBaseline.objects.all()}


class CameraThresholds:
    """The thresholds each camera's frames are held to, looked up once per camera: a railcar's
    check or a re-judge asks for every frame, the database once per camera."""

    def __init__(
        self,
        thresholds: QualityThresholds,
        *,
        rule: HistoryRule | None = None,
        baselines: dict[Key, quality_baseline.CameraBaseline] | None = None,
    ) -> None:
        self.thresholds = thresholds
        self.rule = rule or history_rule()
        # All baselines, loaded at once (a re-judge: a camera without a row has none), or read
        # one camera at a time (a railcar's check).
        self._complete = baselines is not None
        self._baselines: dict[Key, quality_baseline.CameraBaseline | None] = dict(baselines or {})
        self._found: dict[tuple[str, str, bool], QualityThresholds] = {}

    def __call__(self, *, line: str, camera: str, boxed: bool) -> QualityThresholds:
        """For a frame of this camera, with a railcar box (`boxed`) or without."""
        key = (line, camera, boxed)
        if key not in self._found:
            if (line, camera) not in self._baselines and not self._complete:
                self._baselines[line, camera] = baseline_of(line=line, camera=camera)
            self._found[key] = quality_baseline.camera_thresholds(
                self.thresholds, self._baselines.get((line, camera)), self.rule, boxed=boxed
            )
        return self._found[key]


@dataclass(frozen=True)
class CameraRow:
    """One camera on the operations page: its baseline and the thresholds it implies."""

    line: str
    camera: str
    frames: int
    computed_at: datetime
    haze: float | None  # the clear-view haze h0, uncapped
    capped: bool  # h0 above max_haze_baseline: the cap holds instead (a veiled window?)
    max_haze: float  # what its frames are held to now: its own limit, or the absolute one
    own: bool  # whether that is its own limit (False: too little history, absolute max_haze)
    occupancy_frames: int
    occupancy: float | None  # what its loaded railcars read without a box
    min_occupancy: float  # what its box-less frames are held to now
    own_occupancy: bool  # whether that is its own limit


def camera_rows(*, line: str = "", camera: str = "") -> list[CameraRow]:
    """Every camera's baseline, as the checks use it now (policies read once)."""
    thresholds, rule = quality_thresholds(), history_rule()
    rows = CameraBaseline.objects.all()
    if line:
        rows = rows.filter(line=line)
    if camera:
        rows = rows.filter(camera=camera)
    found = []
    for row in rows:
        baseline = _as_baseline(row)
        held_to = quality_baseline.camera_thresholds(thresholds, baseline, rule, boxed=False)
        found.append(
            CameraRow(
                line=row.line,
                camera=row.camera,
                frames=row.frames,
                computed_at=row.computed_at,
                haze=row.haze,
                capped=row.haze is not None and row.haze > thresholds.max_haze_baseline,
                max_haze=held_to.max_haze,
                own=quality_baseline.usable(baseline, rule),
                occupancy_frames=row.occupancy_frames,
                occupancy=row.occupancy,
                min_occupancy=held_to.min_occupancy,
                own_occupancy=quality_baseline.usable_occupancy(baseline, rule),
            )
        )
    return found
