"""What an annotator does with an assignment: look, exclude frames, keep masks, submit a rating
(`labeling.rating`).

Every function takes the assignment's opaque uid and the annotator, and checks that the annotator
holds it (`pool.holder_assignment`): the same check guards the page, the API and the images.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from labeling import masks
from labeling import rle as rle_codec
from labeling.layers import LayerFrames, layers_with_frames
from labeling.masks import MaskResult
from labeling.models import Assignment, Frame, FrameExclusion, InclusionKind, Mask
from labeling.pool import LeaseExpired, LeaseLost, NotYourAssignment, holder_assignment, lease_over

# Submitting a rating has a module of its own; the page and the API find it here too.
from labeling.rating import NothingLeftToRate, submit_rating
from scrapannot import audit

Status = Assignment.Status


class FrameNotInAssignment(Exception):
    """The frame is not an eligible frame of the assigned railcar (or does not exist)."""


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


__all__ = [
    "FrameNotInAssignment", "LeaseExpired", "LeaseLost", "NothingLeftToRate",
    "NotYourAssignment", "active_assignment", "assignment_frame", "delete_mask",
    "exclude_frame", "frames_left", "include_frame", "propose_mask",
    "save_mask",
    "submit_rating", "workspace_layers",
]  # fmt: skip
