"""Repair an ingested unloading from a plant's re-post.

A frame that never arrived, or arrived damaged in transit (its bytes do not match the declared
SHA-256), is the transport's fault, not the camera's: when the same manifest is posted again with
that frame's file, the file fills the frame in, and the railcar's quality checks run again.
Frames the camera produced badly (not an image, truncated at the source, oversized) stay as they
are: a re-post would send the same bytes.
"""

from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from labeling.framefiles import discard_frames, store_frame
from labeling.ingest_files import FrameSource, check_source
from labeling.models import Frame, FrameCheck, Railcar
from labeling.signals import unloading_ingested
from scrapannot import audit

Rejection = Frame.Rejection
REPAIRABLE = (Rejection.MISSING, Rejection.CHECKSUM)
# Before anyone rates it: the frames an annotator is looking at must not change under them.
REPAIRABLE_STATUSES = (
    Railcar.Status.INGESTED,
    Railcar.Status.CHECKING,
    Railcar.Status.IN_POOL,
    Railcar.Status.NEEDS_ATTENTION,
)


def repairable(railcar: Railcar) -> bool:
    return railcar.status in REPAIRABLE_STATUSES and not railcar.assignments.exists()


def repair_frames(
    *,
    railcar: Railcar,
    entries: Mapping[str, Mapping[str, Any]],
    sources: Mapping[str, FrameSource],
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> int:
    """Fill in the railcar's missing or damaged frames from `sources`; return how many changed.

    The caller holds the railcar's row lock (two concurrent re-posts repair once). Audited as
    `unloading.repaired`, with each frame's rejection before and after."""
    if not repairable(railcar):
        return 0
    candidates = [
        f
        for f in railcar.frames.filter(rejection__in=REPAIRABLE).order_by("index")
        if f.source_name in sources
    ]
    changes, written = [], []
    try:
        for frame in candidates:
            verdict = check_source(entries[frame.source_name], sources[frame.source_name])
            if verdict.rejection == frame.rejection and verdict.rejection in REPAIRABLE:
                continue  # damaged again: nothing learned
            changes.append(
                {"file": frame.source_name, "before": frame.rejection, "after": verdict.rejection}
            )
            frame.file = store_frame(verdict=verdict, written=written)
            frame.content_sha256 = verdict.content_sha256
            frame.size_bytes = len(verdict.data)
            frame.width, frame.height = verdict.width, verdict.height
            frame.image_format = verdict.image_format
            frame.rejection, frame.rejection_detail = verdict.rejection, verdict.detail
            frame.quality = Frame.Quality.PENDING
            frame.save()
            FrameCheck.objects.filter(frame=frame).delete()
        if not changes:
            return 0
        # Back to the checks: they measure the pending frames and re-pick the keyframes; the
        # pool slots already opened are kept (conclude_checks opens them only once).
        railcar.status = Railcar.Status.CHECKING
        railcar.save(update_fields=["status"])
        audit.record(
            action="unloading.repaired",
            actor=actor,
            actor_label=actor_label,
            obj=railcar,
            payload={"frames": changes},
        )
    except BaseException:
        discard_frames(written)
        raise
    railcar_id = railcar.pk
    transaction.on_commit(lambda: unloading_ingested.send(sender=Railcar, railcar_id=railcar_id))
    return len(changes)
