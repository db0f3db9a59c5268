"""Ingest one unloading layer by layer while the magnet works: open it, append frames, close it.

The plant system that posts an unloading whole waits for its end; one that appends each layer as
it is grabbed lets the production model estimate the railcar during the unloading (seed 000,
section 6.2). The parts are those of the whole path (`labeling.ingest`): the same frame entries
and checksums (`labeling.manifest`, `labeling.ingest_files`), content-addressed files
(`labeling.framefiles`), the same quality checks (`labeling.quality`) and keyframe rule
(`labeling.layers`), and the same identity (railcar, line, start time) claimed insert-or-conflict.

What differs:
- an open unloading is a railcar with status `receiving`: the pool and the quality task leave it
  alone until it is closed; the reconciler closes one that has received no frames for
  SCRAPANNOT["LIVE_IDLE_CLOSE_S"] (a plant system that died before its close);
- appended frames are checked in the request that brings them (a layer is a handful of frames,
  and its estimate is then one queue hop away), and every layer an append touches gets its
  keyframe picked; `layer_checked` is sent for each such layer with an eligible keyframe;
- closing hands the railcar to the normal flow: status `ingested` and `unloading_ingested`, so
  the quality task concludes it into the pool (or the attention list) as for a whole unloading.

Each frame names its layer (`layer`, 1, 2, ...): the IoU rule that finds layers from boxes needs
the whole unloading, so an unloading without named layers is posted whole. Boxes, where given,
still choose each layer's keyframe (nearest the IoU peak).
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from labeling import quality
from labeling.camera_baselines import CameraThresholds
from labeling.framefiles import discard_frames, store_frame
from labeling.imagefiles import FrameBytesVerdict
from labeling.ingest import UnloadingConflict
from labeling.ingest_files import FrameSource, check_source
from labeling.layers import box_iou, pick_keyframes
from labeling.models import Frame, Layer, Railcar
from labeling.pipeline import save_new_frame_checks
from labeling.policies import quality_thresholds
from labeling.quality import CheckResult, QualityThresholds
from labeling.signals import layer_checked, unloading_ingested
from scrapannot import audit
from scrapannot.audit import canonical_json

Status = Railcar.Status


class UnloadingClosed(UnloadingConflict):
    """Frames sent to an unloading that was closed (409, like every conflict)."""


class BadAppend(ValueError):
    """The frames do not continue the unloading (time order, layer numbers, frame limit)."""


@dataclass(frozen=True)
class OpenResult:
    railcar: Railcar
    created: bool


@dataclass(frozen=True)
class AppendResult:
    railcar: Railcar
    appended: int  # frames stored by this request (0 for a repeated append)
    eligible: int  # of those, frames that passed the checks
    layers: list[int]  # layer numbers this request touched
    keyframes: list[int]  # of those, layer numbers with an eligible keyframe
    rejected: list[dict[str, str]] = field(default_factory=list)


def _open_fingerprint(real_id: str, line: str, started_at: datetime) -> str:
    # Stands for the manifest fingerprint while the frames are still coming; it keeps the unique
    # column filled and says "opened layer by layer" (a whole post of the same identity is then a
    # different manifest: 409).
    identity = {"open": [real_id, line, started_at.astimezone(UTC).isoformat()]}
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()


def open_unloading(
    *,
    real_id: str,
    line: str,
    camera: str,
    started_at: datetime,
    actor: AbstractBaseUser | None,
) -> OpenResult:
    """Open an unloading (201), or find the one this identity opened before (200, however far
    it got); an identity that a whole post took is a conflict."""
    fingerprint = _open_fingerprint(real_id, line, started_at)
    identity = {"real_id": real_id, "line": line, "unloading_started_at": started_at}
    with transaction.atomic():
        try:
            with transaction.atomic():  # insert-or-conflict, as labeling.ingest._claim
                railcar = Railcar.objects.create(
                    **identity,
                    camera=camera,
                    fingerprint=fingerprint,
                    unloading_ended_at=started_at,
                    layer_source="manifest",
                    status=Status.RECEIVING,
                )
        except IntegrityError:
            railcar = Railcar.objects.filter(**identity).first()
            if railcar is None or railcar.fingerprint != fingerprint:
                raise UnloadingConflict(
                    "This railcar's unloading at this line and start time was already posted "
                    "whole, or opened with another start."
                ) from None
            return OpenResult(railcar=railcar, created=False)
        audit.record(
            action="unloading.opened",
            actor=actor,
            obj=railcar,
            payload={"line": line, "camera": camera, "started_at": started_at.isoformat()},
        )
    return OpenResult(railcar=railcar, created=True)


def _same_frame(frame: Frame, entry: Mapping[str, Any]) -> bool:
    return (
        frame.declared_sha256 == entry["sha256"]
        and frame.captured_at == entry["captured_at"]
        and frame.layer is not None
        and frame.layer.index == entry["layer"]
    )


def _new_entries(railcar: Railcar, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries not appended before; a name appended before with other content is a
    conflict (a retry must send the same frames)."""
    stored = {
        f.source_name: f
        for f in railcar.frames.filter(source_name__in=[e["file"] for e in entries]).select_related(
            "layer"
        )
    }
    for entry in entries:
        found = stored.get(entry["file"])
        if found is not None and not _same_frame(found, entry):
            raise UnloadingConflict(
                f"Frame {entry['file']!r} was appended before with another checksum, time or layer."
            )
    return [e for e in entries if e["file"] not in stored]


def _continues(railcar: Railcar, entries: list[dict[str, Any]]) -> None:
    last = railcar.frames.select_related("layer").order_by("-index").first()
    top = railcar.layers.aggregate(n=Max("index"))["n"] or 0
    count = railcar.frames.count()
    limit = settings.SCRAPANNOT["MAX_FRAMES_PER_UNLOADING"]
    if count + len(entries) > limit:
        raise BadAppend(f"At most {limit} frames per unloading.")
    previous_time = last.captured_at if last else railcar.unloading_started_at
    previous_layer = last.layer.index if last and last.layer else 1
    for entry in entries:
        if entry["captured_at"] < previous_time:
            raise BadAppend(
                f"{entry['file']}: frames must be in time order, after the frames appended "
                "before and not before the unloading's start."
            )
        if entry["layer"] < previous_layer or entry["layer"] > top + 1:
            raise BadAppend(
                f"{entry['file']}: layer {entry['layer']} does not continue the unloading "
                f"(the last frame was in layer {previous_layer}; layers run 1, 2, ... in order)."
            )
        previous_time, previous_layer = entry["captured_at"], entry["layer"]
        top = max(top, entry["layer"])


def _measure(
    verdict: FrameBytesVerdict, entry: Mapping[str, Any], thresholds: QualityThresholds
) -> list[CheckResult]:
    """The quality checks of a frame's bytes as they arrived (pipeline.measure_frame reads them
    back from storage; here they are still in memory)."""
    if verdict.rejection:
        label = Frame.Rejection(verdict.rejection).label
        return [CheckResult("decode", None, None, False, f"{label}: {verdict.detail}"[:255])]
    return quality.check_frame_bytes(
        verdict.data, railcar_box=entry.get("railcar_box"), thresholds=thresholds
    )


def append_frames(
    *,
    railcar: Railcar,
    entries: list[dict[str, Any]],
    sources: Mapping[str, FrameSource],
    actor: AbstractBaseUser | None,
) -> AppendResult:
    """Append validated frame entries (`AppendManifestSerializer`) to an open unloading; frames
    appended before are skipped (a retry stores nothing twice)."""
    if railcar.status != Status.RECEIVING:
        raise UnloadingClosed("This unloading was closed; frames can no longer be appended.")
    # The slow part (hashing, decoding, measuring) happens outside the transaction, for the
    # frames that look new; the transaction decides again under the railcar's row lock.
    fresh = _new_entries(railcar, entries)
    # Each camera's frames are held to its own baseline where it has one (camera_baselines).
    per_camera = CameraThresholds(quality_thresholds())
    checked = {
        e["file"]: (
            v,
            _measure(
                v,
                e,
                per_camera(
                    line=railcar.line,
                    camera=e.get("camera") or railcar.camera,
                    boxed=e.get("railcar_box") is not None,
                ),
            ),
        )
        for e in fresh
        for v in [check_source(e, sources.get(e["file"]))]
    }
    written: list[str] = []
    try:
        with transaction.atomic():
            railcar = Railcar.objects.select_for_update().get(pk=railcar.pk)
            if railcar.status != Status.RECEIVING:
                raise UnloadingClosed(
                    "This unloading was closed; frames can no longer be appended."
                )
            fresh = _new_entries(railcar, entries)  # a concurrent retry may have stored some
            if not fresh:
                return AppendResult(
                    railcar=railcar, appended=0, eligible=0, layers=[], keyframes=[]
                )
            _continues(railcar, fresh)
            frames = _store(railcar, fresh, checked, written)
            touched = sorted({e["layer"] for e in fresh})
            pick_keyframes(railcar=railcar)
            keyframes = list(
                railcar.layers.filter(
                    index__in=touched,
                    keyframe__isnull=False,
                    keyframe__quality=Frame.Quality.ELIGIBLE,
                ).values_list("index", flat=True)
            )
            result = AppendResult(
                railcar=railcar,
                appended=len(frames),
                eligible=sum(1 for f in frames if f.quality == Frame.Quality.ELIGIBLE),
                layers=touched,
                keyframes=sorted(keyframes),
                rejected=[
                    {"file": f.source_name, "reason": f.rejection, "detail": f.rejection_detail}
                    for f in frames
                    if f.rejection
                ],
            )
            audit.record(
                action="unloading.frames_appended",
                actor=actor,
                obj=railcar,
                payload={
                    "frames": result.appended,
                    "eligible": result.eligible,
                    "layers": result.layers,
                    "keyframes": result.keyframes,
                    "rejected": result.rejected,
                },
            )
            railcar_id = railcar.pk
            for index in result.keyframes:
                transaction.on_commit(
                    lambda i=index: layer_checked.send(
                        sender=Railcar, railcar_id=railcar_id, layer_index=i
                    )
                )
    except BaseException:
        discard_frames(written)
        raise
    return result


def _store(
    railcar: Railcar,
    entries: list[dict[str, Any]],
    checked: Mapping[str, tuple[FrameBytesVerdict, list[CheckResult]]],
    written: list[str],
) -> list[Frame]:
    layers = {layer.index: layer for layer in railcar.layers.all()}
    for number in sorted({e["layer"] for e in entries} - set(layers)):
        layers[number] = Layer.objects.create(railcar=railcar, index=number)
    start = (railcar.frames.aggregate(n=Max("index"))["n"] or -1) + 1
    frames = []
    for position, entry in enumerate(entries, start=start):
        verdict, _ = checked[entry["file"]]
        has_boxes = entry.get("magnet_box") and entry.get("railcar_box")
        iou = box_iou(entry["magnet_box"], entry["railcar_box"]) if has_boxes else None
        frames.append(
            Frame(
                railcar=railcar,
                layer=layers[entry["layer"]],
                index=position,
                source_name=entry["file"],
                captured_at=entry["captured_at"],
                camera=entry.get("camera") or railcar.camera,
                declared_sha256=entry["sha256"],
                content_sha256=verdict.content_sha256,
                file=store_frame(verdict=verdict, written=written),
                size_bytes=len(verdict.data),
                width=verdict.width,
                height=verdict.height,
                image_format=verdict.image_format,
                magnet_box=entry.get("magnet_box"),
                railcar_box=entry.get("railcar_box"),
                iou=iou,
                rejection=verdict.rejection,
                rejection_detail=verdict.detail,
            )
        )
    frames = Frame.objects.bulk_create(frames)  # PostgreSQL and SQLite give back the ids
    save_new_frame_checks(
        checked=[(f, checked[e["file"]][1]) for f, e in zip(frames, entries, strict=True)]
    )
    for frame in frames:
        layer = layers[frame.layer.index]
        if frame.iou is not None and (layer.peak_iou is None or frame.iou > layer.peak_iou):
            layer.peak_iou = frame.iou
            layer.save(update_fields=["peak_iou"])
    Railcar.objects.filter(pk=railcar.pk).update(
        unloading_ended_at=entries[-1]["captured_at"], received_at=timezone.now()
    )
    return frames


def close_unloading(
    *, railcar: Railcar, actor: AbstractBaseUser | None, idle_s: float | None = None
) -> Railcar:
    """Close an open unloading: it continues as an ingested one (quality conclusion, then the
    pool). Closing a closed unloading again changes nothing. `idle_s`: closed by the system
    after that long without frames (labeling.reconcile), said in the audit event."""
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().get(pk=railcar.pk)
        if railcar.status != Status.RECEIVING:
            return railcar
        frames = list(railcar.frames.values_list("quality", flat=True))
        if not frames:
            raise BadAppend("No frames were appended; an empty unloading cannot be closed.")
        railcar.status = Status.INGESTED
        railcar.save(update_fields=["status"])
        audit.record(
            action="unloading.ingested",
            actor=actor,
            obj=railcar,
            payload={
                "fingerprint": railcar.fingerprint,
                "frames": len(frames),
                "eligible": sum(1 for q in frames if q == Frame.Quality.ELIGIBLE),
                "layers": railcar.layers.count(),
                "layer_source": railcar.layer_source,
                "mode": "layer by layer",
                **({"closed": f"idle {idle_s:.0f} s, by the reconciler"} if idle_s else {}),
            },
        )
        railcar_id = railcar.pk
        transaction.on_commit(
            lambda: unloading_ingested.send(sender=Railcar, railcar_id=railcar_id)
        )
    return railcar
