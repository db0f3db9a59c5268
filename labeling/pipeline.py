"""After ingest: run the quality checks, settle each frame's and layer's eligibility, and hand
the railcar to the annotation pool or to the admins' attention list.

Safe to re-run at any point (Celery delivers at least once): frames already checked are skipped,
and a railcar whose checks were concluded is left alone.
"""

from collections import Counter
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from labeling import quality
from labeling.camera_baselines import CameraThresholds, all_baselines
from labeling.framefiles import FrameFileMissing, read_frame
from labeling.layers import pick_keyframes
from labeling.models import Frame, FrameCheck, Railcar
from labeling.policies import MIN_ELIGIBLE_LAYERS, RATERS_PER_RAILCAR, quality_thresholds
from labeling.quality import CheckResult, QualityThresholds
from labeling.signals import railcar_entered_pool
from scrapannot import audit
from scrapannot.policy import policy_value

Status = Railcar.Status
CONCLUDED = (Status.IN_POOL, Status.NEEDS_ATTENTION)


def measure_frame(*, frame: Frame, thresholds: QualityThresholds) -> list[CheckResult]:
    if frame.rejection:
        detail = f"{frame.get_rejection_display()}: {frame.rejection_detail}"
        return [CheckResult("decode", None, None, False, detail[:255])]
    try:
        data = read_frame(frame=frame)
    except FrameFileMissing as exc:
        # The frame fails its decode check with the reason: it never reaches an annotator.
        return [CheckResult("decode", None, None, False, str(exc))]
    return quality.check_frame_bytes(data, railcar_box=frame.railcar_box, thresholds=thresholds)


def save_frame_checks(*, frame: Frame, results: list[CheckResult]) -> None:
    """Replace the frame's checks with `results` and settle its eligibility, atomically."""
    eligible = all(r.passed for r in results)
    with transaction.atomic():
        FrameCheck.objects.filter(frame=frame).delete()
        FrameCheck.objects.bulk_create(
            FrameCheck(
                frame=frame,
                name=r.check,
                value=r.value,
                threshold=r.threshold,
                passed=r.passed,
                detail=r.detail[:255],
            )
            for r in results
        )
        frame.quality = Frame.Quality.ELIGIBLE if eligible else Frame.Quality.INELIGIBLE
        frame.save(update_fields=["quality"])


def save_new_frame_checks(*, checked: list[tuple[Frame, list[CheckResult]]]) -> None:
    """`save_frame_checks` for frames just created (no checks yet), in two queries: a layer
    appended while unloading (labeling.live_ingest) is checked in its own request."""
    for frame, results in checked:
        eligible = all(r.passed for r in results)
        frame.quality = Frame.Quality.ELIGIBLE if eligible else Frame.Quality.INELIGIBLE
    FrameCheck.objects.bulk_create(
        FrameCheck(
            frame=frame,
            name=r.check,
            value=r.value,
            threshold=r.threshold,
            passed=r.passed,
            detail=r.detail[:255],
        )
        for frame, results in checked
        for r in results
    )
    Frame.objects.bulk_update([frame for frame, _ in checked], ["quality"])


def check_railcar(*, railcar_id: int) -> Railcar | None:
    """Check every frame not checked yet, then conclude. None when the railcar is gone."""
    railcar = Railcar.objects.filter(pk=railcar_id).first()
    if railcar is None or railcar.status in CONCLUDED:
        return railcar
    Railcar.objects.filter(pk=railcar_id, status=Status.INGESTED).update(status=Status.CHECKING)
    thresholds = quality_thresholds()
    # Each camera's frames are held to its own baseline where it has one (camera_baselines).
    per_camera = CameraThresholds(thresholds)
    for frame in railcar.frames.filter(quality=Frame.Quality.PENDING).order_by("index"):
        boxed = frame.railcar_box is not None
        held_to = per_camera(line=railcar.line, camera=frame.camera, boxed=boxed)
        save_frame_checks(frame=frame, results=measure_frame(frame=frame, thresholds=held_to))
    return conclude_checks(railcar_id=railcar_id, thresholds=thresholds)


def _failure_counts(railcar: Railcar) -> dict[str, int]:
    failed = FrameCheck.objects.filter(frame__railcar=railcar, passed=False)
    return dict(Counter(failed.values_list("name", flat=True)))


def conclude_checks(
    *, railcar_id: int, thresholds: QualityThresholds, action: str = "quality.checked"
) -> Railcar:
    """Decide where a checked railcar goes. Only one caller wins: the row is locked and a
    railcar already concluded is returned unchanged (unless re-judging, see `rejudge`)."""
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().get(pk=railcar_id)
        if action == "quality.checked" and railcar.status != Status.CHECKING:
            return railcar
        pending = railcar.frames.filter(quality=Frame.Quality.PENDING)
        if action == "quality.checked" and pending.exists():
            # A re-post repaired a frame after this check listed its frames; the check that
            # the repair enqueued concludes (labeling.ingest_repair).
            return railcar
        # The one moment the keyframes are picked: eligibility was just settled (or re-judged).
        eligible_layers = pick_keyframes(railcar=railcar)
        needed = int(policy_value(MIN_ELIGIBLE_LAYERS))
        layers = railcar.layers.count()
        failures = _failure_counts(railcar)
        if eligible_layers >= needed:
            railcar.status, railcar.attention_reason = Status.IN_POOL, ""
            if railcar.raters_needed == 0:  # first entry: the slots open now
                railcar.raters_needed = int(policy_value(RATERS_PER_RAILCAR))
                railcar.open_slots = railcar.raters_needed
        else:
            failing = ", ".join(f"{name} x{count}" for name, count in sorted(failures.items()))
            railcar.status = Status.NEEDS_ATTENTION
            railcar.attention_reason = (
                f"{eligible_layers} of {layers} layers have an eligible frame; "
                f"policy needs {needed}" + (f". Failed checks: {failing}" if failing else "")
            )[:255]
        railcar.checked_at = timezone.now()
        railcar.save(
            update_fields=[
                "status",
                "attention_reason",
                "checked_at",
                "raters_needed",
                "open_slots",
            ]
        )
        frames = railcar.frames.values_list("quality", flat=True)
        audit.record(
            action=action,
            obj=railcar,
            payload={
                "outcome": railcar.status,
                "eligible_frames": sum(1 for q in frames if q == Frame.Quality.ELIGIBLE),
                "frames": len(frames),
                "eligible_layers": eligible_layers,
                "layers": layers,
                "failed_checks": failures,
                "thresholds": thresholds.as_dict(),
                "min_eligible_layers": needed,
            },
        )
        if railcar.status == Status.IN_POOL:
            transaction.on_commit(
                lambda: railcar_entered_pool.send(sender=Railcar, railcar_id=railcar.pk)
            )
    return railcar


def rejudge(
    *,
    railcar_id: int,
    thresholds: QualityThresholds,
    per_camera: CameraThresholds | None = None,
) -> Railcar:
    """Hold a concluded railcar's stored measurements to `thresholds` (after a policy change),
    each camera's to its current baseline, without decoding a frame again; it may move between
    the pool and the attention list."""
    per_camera = per_camera or CameraThresholds(thresholds)
    line = Railcar.objects.values_list("line", flat=True).get(pk=railcar_id)
    cameras = {
        pk: (camera, box is not None)
        for pk, camera, box in Frame.objects.filter(railcar_id=railcar_id).values_list(
            "pk", "camera", "railcar_box"
        )
    }
    checks = list(FrameCheck.objects.filter(frame__railcar_id=railcar_id).order_by("frame_id"))
    by_frame: dict[int, list[FrameCheck]] = {}
    for check in checks:
        if check.name != "decode" and check.value is not None:
            camera, boxed = cameras[check.frame_id]
            held_to = per_camera(line=line, camera=camera, boxed=boxed)
            check.passed = quality.verdict(check.name, check.value, held_to)
            check.threshold = quality.threshold_for(check.name, check.value, held_to)
            check.detail = (
                f"{check.name} {check.value:.4g} {'passes' if check.passed else 'fails'} "
                f"threshold {check.threshold:g} (re-judged after a policy change)"
            )
        by_frame.setdefault(check.frame_id, []).append(check)
    frames = list(Frame.objects.filter(pk__in=by_frame))
    for frame in frames:
        eligible = all(c.passed for c in by_frame[frame.pk])
        frame.quality = Frame.Quality.ELIGIBLE if eligible else Frame.Quality.INELIGIBLE
    with transaction.atomic():
        FrameCheck.objects.bulk_update(checks, ["passed", "threshold", "detail"])
        Frame.objects.bulk_update(frames, ["quality"])
        return conclude_checks(
            railcar_id=railcar_id, thresholds=thresholds, action="quality.rejudged"
        )


def rejudge_all(*, thresholds: QualityThresholds | None = None) -> int:
    """Re-apply the current thresholds to every railcar whose checks were concluded and that no
    annotator has taken yet (the frames someone is rating must not change under them)."""
    thresholds = thresholds or quality_thresholds()
    per_camera = CameraThresholds(thresholds, baselines=all_baselines())
    railcars = Railcar.objects.filter(status__in=CONCLUDED).exclude(assignments__isnull=False)
    ids = list(railcars.values_list("pk", flat=True))
    for railcar_id in ids:
        rejudge(railcar_id=railcar_id, thresholds=thresholds, per_camera=per_camera)
    return len(ids)


@dataclass(frozen=True)
class RejudgePreview:
    """What `rejudge_all` would change under the current thresholds, without changing it."""

    railcars: int  # concluded railcars no annotator has taken: the ones re-judged
    frames_changing: int  # frames whose eligibility flips
    to_pool: int  # railcars on the attention list that would enter the pool
    to_attention: int  # railcars in the pool that would leave it for the attention list


def rejudge_preview(*, thresholds: QualityThresholds | None = None) -> RejudgePreview:
    """The dry run shown before an admin confirms a re-judge: the same verdicts as `rejudge`,
    over the stored measurements, read-only (three queries)."""
    thresholds = thresholds or quality_thresholds()
    per_camera = CameraThresholds(thresholds, baselines=all_baselines())
    needed = int(policy_value(MIN_ELIGIBLE_LAYERS))
    statuses = dict(
        Railcar.objects.filter(status__in=CONCLUDED)
        .exclude(assignments__isnull=False)
        .values_list("pk", "status")
    )
    eligible: dict[int, bool] = {}
    for frame_id, line, camera, box, name, value, passed in FrameCheck.objects.filter(
        frame__railcar_id__in=statuses
    ).values_list(
        "frame_id",
        "frame__railcar__line",
        "frame__camera",
        "frame__railcar_box",
        "name",
        "value",
        "passed",
    ):
        if name != "decode" and value is not None:
            held_to = per_camera(line=line, camera=camera, boxed=box is not None)
            passed = quality.verdict(name, value, held_to)
        eligible[frame_id] = eligible.get(frame_id, True) and passed
    frames_changing = 0
    layers: dict[int, set[int]] = {railcar_id: set() for railcar_id in statuses}
    for frame_id, railcar_id, layer_id, was in Frame.objects.filter(
        railcar_id__in=statuses
    ).values_list("pk", "railcar_id", "layer_id", "quality"):
        now = was
        if frame_id in eligible:  # rejudge settles only the frames that have checks
            now = Frame.Quality.ELIGIBLE if eligible[frame_id] else Frame.Quality.INELIGIBLE
        frames_changing += now != was
        if now == Frame.Quality.ELIGIBLE and layer_id is not None:
            layers[railcar_id].add(layer_id)
    moves = Counter(
        (status, Status.IN_POOL if len(layers[pk]) >= needed else Status.NEEDS_ATTENTION)
        for pk, status in statuses.items()
    )
    return RejudgePreview(
        railcars=len(statuses),
        frames_changing=frames_changing,
        to_pool=moves[(Status.NEEDS_ATTENTION, Status.IN_POOL)],
        to_attention=moves[(Status.IN_POOL, Status.NEEDS_ATTENTION)],
    )
