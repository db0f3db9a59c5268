"""What an annotator does with an assignment: look, exclude frames, keep masks, submit a rating.

Every function takes the assignment's opaque uid and the annotator, and checks that the annotator
holds it (`pool.holder_assignment`): the same check guards the page, the API and the images.
"""

from decimal import Decimal
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import IntegerField, Subquery
from django.utils import timezone

from labeling import masks
from labeling import rle as rle_codec
from labeling.layers import LayerFrames, layers_with_frames
from labeling.masks import MaskResult
from labeling.models import (
    Assignment,
    Frame,
    FrameExclusion,
    GoldRailcar,
    InclusionKind,
    Mask,
    Railcar,
    Rating,
)
from labeling.pool import LeaseExpired, LeaseLost, NotYourAssignment, holder_assignment, lease_over
from labeling.signals import railcar_rated
from scrapannot import audit

Status = Assignment.Status


class FrameNotInAssignment(Exception):
    """The frame is not an eligible frame of the assigned railcar (or does not exist)."""


class NothingLeftToRate(Exception):
    """The annotator excluded every eligible frame: there is nothing to rate, so the railcar
    goes back with a reason (frames_unusable) instead of getting a rating of nothing."""


def active_assignment(
    *, uid: object, annotator: AbstractBaseUser, lock: bool = False
) -> Assignment:
    assignment = holder_assignment(uid=uid, annotator=annotator, lock=lock)
    if assignment.status != Status.ACTIVE:
        raise LeaseLost
    if lease_over(assignment):
        raise LeaseExpired
    return assignment


def frames_left(*, assignment: Assignment) -> int:
    """The railcar's eligible frames the annotator has not excluded."""
    excluded = FrameExclusion.objects.filter(assignment=assignment).values("frame_id")
    return (
        Frame.objects.filter(railcar_id=assignment.railcar_id, quality=Frame.Quality.ELIGIBLE)
        .exclude(pk__in=excluded)
        .count()
    )


def assignment_frame(*, assignment: Assignment, frame_uid: object) -> Frame:
    """An eligible frame of the assignment's railcar, by its opaque uid."""
    frame = Frame.objects.filter(
        uid=frame_uid, railcar_id=assignment.railcar_id, quality=Frame.Quality.ELIGIBLE
    ).first()
    if frame is None:
        raise FrameNotInAssignment
    return frame


def workspace_layers(*, assignment: Assignment) -> list[LayerFrames]:
    """The assigned railcar's layers with their eligible frames, the keyframe first."""
    return layers_with_frames(railcar_id=assignment.railcar_id)


def exclude_frame(
    *, uid: object, annotator: AbstractBaseUser, frame_uid: object, code: str, note: str = ""
) -> FrameExclusion:
    with transaction.atomic():
        assignment = active_assignment(uid=uid, annotator=annotator, lock=True)
        frame = assignment_frame(assignment=assignment, frame_uid=frame_uid)
        exclusion, created = FrameExclusion.objects.update_or_create(
            assignment=assignment, frame=frame, defaults={"code": code, "note": note[:200]}
        )
        audit.record(
            action="frame.excluded",
            actor=annotator,
            obj=assignment,
            payload={"frame": frame.pk, "code": code, "note": note[:200], "changed": not created},
        )
    return exclusion


def include_frame(*, uid: object, annotator: AbstractBaseUser, frame_uid: object) -> None:
    with transaction.atomic():
        assignment = active_assignment(uid=uid, annotator=annotator, lock=True)
        frame = assignment_frame(assignment=assignment, frame_uid=frame_uid)
        deleted, _ = FrameExclusion.objects.filter(assignment=assignment, frame=frame).delete()
        if deleted:
            audit.record(
                action="frame.included",
                actor=annotator,
                obj=assignment,
                payload={"frame": frame.pk},
            )


def propose_mask(
    *, uid: object, annotator: AbstractBaseUser, frame_uid: object, prompts: Any
) -> MaskResult:
    """A mask for the prompts, not kept (the annotator accepts it or clicks on).
    ValueError, with a message, for prompts that do not fit the frame."""
    assignment = active_assignment(uid=uid, annotator=annotator)
    frame = assignment_frame(assignment=assignment, frame_uid=frame_uid)
    parsed = masks.Prompts.from_json(prompts, width=frame.width, height=frame.height)
    return masks.predict_mask(frame=frame, prompts=parsed)


def save_mask(
    *,
    uid: object,
    annotator: AbstractBaseUser,
    frame_uid: object,
    rle: Any,
    prompts: Any,
    engine: str,
    kind: str = InclusionKind.OTHER,
) -> Mask:
    """Keep an accepted mask. ValueError when the RLE or the prompts do not fit the frame."""
    with transaction.atomic():
        assignment = active_assignment(uid=uid, annotator=annotator, lock=True)
        frame = assignment_frame(assignment=assignment, frame_uid=frame_uid)
        pixels, parsed = _checked_mask(frame, rle=rle, prompts=prompts)
        mask = Mask.objects.create(
            # Re-encoded: whatever form of RLE came in, the stored one is compressed COCO RLE.
            assignment=assignment, frame=frame, rle=rle_codec.encode(pixels),
            prompts=parsed.as_json(), engine=engine[:80], area=int(pixels.sum()),
            kind=_kind(kind),
        )  # fmt: skip
        audit.record(
            action="mask.saved",
            actor=annotator,
            obj=mask,
            payload={
                "frame": frame.pk,
                "engine": mask.engine,
                "area": mask.area,
                "prompts": mask.prompts,
                "kind": mask.kind,
            },
        )
    return mask


def _kind(kind: str) -> str:
    if kind not in InclusionKind.values:
        raise ValueError(f"the inclusion kind must be one of {', '.join(InclusionKind.values)}")
    return kind


def _checked_mask(frame: Frame, *, rle: Any, prompts: Any) -> tuple[Any, masks.Prompts]:
    """The mask's pixels and parsed prompts; ValueError when they do not fit the frame."""
    parsed = masks.Prompts.from_json(prompts, width=frame.width, height=frame.height)
    size = rle.get("size") if isinstance(rle, dict) else None
    if size != [frame.height, frame.width]:
        # Checked before decoding: a forged size must not make us allocate a huge mask.
        raise ValueError(f"the mask must be {frame.height} x {frame.width} (size [h, w])")
    pixels = masks.mask_from_rle(rle)
    if not pixels.any():
        raise ValueError("the mask is empty")
    return pixels, parsed


def change_mask(
    *,
    uid: object,
    annotator: AbstractBaseUser,
    mask_uid: object,
    rle: Any = None,
    prompts: Any = None,
    engine: str | None = None,
    kind: str | None = None,
) -> Mask:
    """Correct an accepted mask: new pixels (with the prompts and engine that made them: the
    old prompts plus the added and subtracted clicks), a new inclusion kind, or both. Audited
    with the area before and after. ValueError for pixels or a kind that do not fit."""
    with transaction.atomic():
        assignment = active_assignment(uid=uid, annotator=annotator, lock=True)
        mask = (
            Mask.objects.select_for_update()
            .select_related("frame")
            .filter(uid=mask_uid, assignment=assignment)
            .first()
        )
        if mask is None:
            raise FrameNotInAssignment
        before = {"area": mask.area, "kind": mask.kind}
        if rle is not None:
            if prompts is None or not engine:
                raise ValueError("new pixels need the prompts and the engine that made them")
            pixels, parsed = _checked_mask(mask.frame, rle=rle, prompts=prompts)
            mask.rle = rle_codec.encode(pixels)
            mask.prompts = parsed.as_json()
            mask.engine = engine[:80]
            mask.area = int(pixels.sum())
        if kind is not None:
            mask.kind = _kind(kind)
        after = {"area": mask.area, "kind": mask.kind}
        if after == before and rle is None:
            return mask
        mask.save(update_fields=["rle", "prompts", "engine", "area", "kind"])
        audit.record(
            action="mask.changed",
            actor=annotator,
            obj=mask,
            payload={"frame": mask.frame_id, "before": before, "after": after,
                     "prompts": mask.prompts if rle is not None else None},
        )  # fmt: skip
    return mask


def delete_mask(*, uid: object, annotator: AbstractBaseUser, mask_uid: object) -> None:
    with transaction.atomic():
        assignment = active_assignment(uid=uid, annotator=annotator, lock=True)
        mask = Mask.objects.filter(uid=mask_uid, assignment=assignment).first()
        if mask is None:
            raise FrameNotInAssignment
        payload = {"frame": mask.frame_id, "area": mask.area, "mask": str(mask.uid)}
        mask.delete()
        audit.record(action="mask.deleted", actor=annotator, obj=assignment, payload=payload)


def submit_rating(
    *,
    uid: object,
    annotator: AbstractBaseUser,
    contamination_pct: Decimal,
    grade: str,
    seconds_spent: int,
) -> tuple[Rating, bool]:
    """Record the rating; (rating, created). Submitting again (a double click, a retried
    request) returns the first rating unchanged. A rating after the lease's end is refused
    (LeaseExpired), as is one of a railcar whose every frame was excluded (NothingLeftToRate)."""
    with transaction.atomic():
        assignment = holder_assignment(uid=uid, annotator=annotator, lock=True)
        if assignment.status == Status.SUBMITTED:
            return assignment.rating, False
        if assignment.status != Status.ACTIVE:
            raise LeaseLost
        now = timezone.now()
        if lease_over(assignment, now=now):
            raise LeaseExpired
        # What is left to rate, and the work counts the audit event keeps, in one query.
        work = _work_counts(assignment)
        if not work.pop("frames_left"):
            raise NothingLeftToRate
        rating = Rating.objects.create(
            assignment=assignment,
            railcar_id=assignment.railcar_id,
            annotator=annotator,
            contamination_pct=contamination_pct,
            grade=grade,
            seconds_spent=seconds_spent,
            submitted_at=now,
        )
        assignment.status = Status.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        # Lock order: the railcar row before any audit event, as every other writer (the pool
        # takes the railcar row, then records) does; with inline sealing (AUDIT_SEAL_INLINE)
        # the event holds the chain's lock, and the other way round would deadlock.
        closed = _close_if_fully_rated(railcar_id=assignment.railcar_id)
        audit.record(
            action="rating.submitted",
            actor=annotator,
            obj=rating,
            payload={
                "assignment": assignment.pk,
                "contamination_pct": str(contamination_pct),
                "grade": grade,
                "seconds_spent": seconds_spent,
                **work,
            },
        )
        if closed is not None:
            audit.record(
                action="railcar.rated", obj=closed, payload={"ratings": closed.raters_needed}
            )
            transaction.on_commit(lambda: railcar_rated.send(sender=Railcar, railcar_id=closed.pk))
    return rating, True


class _CountOf(Subquery):
    """The number of rows a queryset has, as a scalar subquery."""

    template = "(SELECT count(*) FROM (%(subquery)s) _rows)"
    output_field = IntegerField()


def _work_counts(assignment: Assignment) -> dict[str, int]:
    """frames_left (as `frames_left`), excluded_frames and masks of the assignment, counted in
    one query."""
    excluded = FrameExclusion.objects.filter(assignment_id=assignment.pk)
    eligible = Frame.objects.filter(
        railcar_id=assignment.railcar_id, quality=Frame.Quality.ELIGIBLE
    ).exclude(pk__in=excluded.values("frame_id"))
    counts = (
        Assignment.objects.filter(pk=assignment.pk)
        .values(
            n_left=_CountOf(eligible.values("pk")),
            n_excluded=_CountOf(excluded.values("pk")),
            n_masks=_CountOf(Mask.objects.filter(assignment_id=assignment.pk).values("pk")),
        )
        .get()
    )
    return {
        "frames_left": counts["n_left"],
        "excluded_frames": counts["n_excluded"],
        "masks": counts["n_masks"],
    }


def _close_if_fully_rated(*, railcar_id: int) -> Railcar | None:
    """Mark the railcar rated once its last needed rating is in; the railcar if so. A gold
    railcar is never closed: it keeps collecting ratings that score raters, never a consensus."""
    railcar = (
        Railcar.objects.select_for_update().only("pk", "status", "raters_needed").get(pk=railcar_id)
    )
    if railcar.status != Railcar.Status.IN_POOL:
        return None
    if GoldRailcar.objects.filter(railcar_id=railcar_id).exists():
        return None
    if Rating.objects.filter(railcar_id=railcar_id).count() < railcar.raters_needed:
        return None
    railcar.status = Railcar.Status.RATED
    railcar.save(update_fields=["status"])
    return railcar


__all__ = [
    "FrameNotInAssignment", "LeaseExpired", "LeaseLost", "NothingLeftToRate",
    "NotYourAssignment", "active_assignment", "assignment_frame", "delete_mask",
    "exclude_frame", "frames_left", "include_frame", "propose_mask",
    "save_mask",
    "submit_rating", "workspace_layers",
]  # fmt: skip
