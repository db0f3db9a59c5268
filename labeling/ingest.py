"""Ingest one unloading: manifest + frame files -> railcar, layers, frames, one audit event.

The API view and the `ingest` command both call `ingest_unloading`. The manifest is validated
first (`labeling.manifest`); a bad frame file never fails the ingest, it becomes an ineligible
frame with its reason. Re-sending the same unloading returns the railcar ingested the first time.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from labeling.framefiles import store_frame
from labeling.imagefiles import FrameBytesVerdict, check_frame_bytes
from labeling.layers import box_iou, runs_above
from labeling.models import Frame, Layer, Railcar
from labeling.signals import unloading_ingested
from scrapannot import audit
from scrapannot.audit import canonical_json


class FrameSource(Protocol):
    """Where a frame's bytes come from: an uploaded file or a file on disk."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...


class UnloadingConflict(Exception):
    """The same railcar/line/start time was already ingested with a different manifest."""


@dataclass(frozen=True)
class IngestResult:
    railcar: Railcar
    created: bool
    frames: int
    eligible: int
    layers: int
    rejected: list[dict[str, str]] = field(default_factory=list)


def manifest_fingerprint(manifest: Mapping[str, Any]) -> str:
    frames = [
        {
            "file": f["file"],
            "sha256": f["sha256"],
            "captured_at": f["captured_at"].isoformat(),
            "camera": f.get("camera"),
            "magnet_box": f.get("magnet_box"),
            "railcar_box": f.get("railcar_box"),
            "layer": f.get("layer"),
        }
        for f in manifest["frames"]
    ]
    content = {k: manifest[k] for k in ("railcar", "line", "camera")} | {"frames": frames}
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def _check_source(entry: Mapping[str, Any], source: FrameSource | None) -> FrameBytesVerdict:
    limits = settings.SCRAPANNOT
    if source is None:
        return FrameBytesVerdict(rejection=Frame.Rejection.MISSING, detail="no file sent")
    if source.size > limits["MAX_FRAME_BYTES"]:
        return FrameBytesVerdict(
            rejection=Frame.Rejection.OVERSIZED,
            detail=f"{source.size} bytes > limit {limits['MAX_FRAME_BYTES']}",
        )
    return check_frame_bytes(
        source.read(),
        declared_sha256=entry["sha256"],
        max_bytes=limits["MAX_FRAME_BYTES"],
        max_pixels=limits["MAX_FRAME_PIXELS"],
    )


def _result(railcar: Railcar, *, created: bool) -> IngestResult:
    frames = list(railcar.frames.order_by("index"))
    return IngestResult(
        railcar=railcar,
        created=created,
        frames=len(frames),
        eligible=sum(1 for f in frames if not f.rejection),
        layers=railcar.layers.count(),
        rejected=[
            {"file": f.source_name, "reason": f.rejection, "detail": f.rejection_detail}
            for f in frames
            if f.rejection
        ],
    )


def _existing(manifest: Mapping[str, Any], fingerprint: str) -> Railcar | None:
    railcar = Railcar.objects.filter(fingerprint=fingerprint).first()
    if railcar is not None:
        return railcar
    started_at = manifest["frames"][0]["captured_at"]
    if Railcar.objects.filter(
        real_id=manifest["railcar"], line=manifest["line"], unloading_started_at=started_at
    ).exists():
        raise UnloadingConflict(
            "This railcar's unloading at this line and start time was already ingested with a "
            "different manifest."
        )
    return None


def ingest_unloading(
    *,
    manifest: Mapping[str, Any],
    sources: Mapping[str, FrameSource],
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> IngestResult:
    """Ingest a validated manifest (`UnloadingManifestSerializer.validated_data`)."""
    fingerprint = manifest_fingerprint(manifest)
    existing = _existing(manifest, fingerprint)
    if existing is not None:
        return _result(existing, created=False)

    entries = manifest["frames"]
    # The slow part (hashing, decoding, writing files) happens before the transaction opens.
    verdicts = [_check_source(entry, sources.get(entry["file"])) for entry in entries]
    names = [store_frame(verdict=verdict) for verdict in verdicts]
    try:
        with transaction.atomic():
            railcar = _create_rows(manifest, fingerprint, entries, verdicts, names)
            result = _result(railcar, created=True)
            audit.record(
                action="unloading.ingested",
                actor=actor,
                actor_label=actor_label,
                obj=railcar,
                payload={
                    "fingerprint": fingerprint,
                    "frames": result.frames,
                    "eligible": result.eligible,
                    "layers": result.layers,
                    "layer_source": railcar.layer_source,
                    "rejected": result.rejected,
                },
            )
            transaction.on_commit(
                lambda: unloading_ingested.send(sender=Railcar, railcar_id=railcar.pk)
            )
    except IntegrityError:
        # A concurrent request with the same unloading won the race; answer as a re-post.
        existing = _existing(manifest, fingerprint)
        if existing is None:
            raise
        return _result(existing, created=False)
    return result


def _layer_runs(entries: list[dict[str, Any]], ious: list[float | None]) -> list[list[int]]:
    """Frame positions of each layer, in order."""
    if "layer" in entries[0]:
        groups: dict[int, list[int]] = {}
        for i, entry in enumerate(entries):
            groups.setdefault(entry["layer"], []).append(i)
        return [groups[k] for k in sorted(groups)]
    runs = runs_above(
        [iou or 0.0 for iou in ious],
        threshold=settings.SCRAPANNOT["LAYER_IOU_THRESHOLD"],
        max_gap=settings.SCRAPANNOT["LAYER_MAX_GAP"],
    )
    return [list(run) for run in runs]


def _create_rows(
    manifest: Mapping[str, Any],
    fingerprint: str,
    entries: list[dict[str, Any]],
    verdicts: list[FrameBytesVerdict],
    names: list[str],
) -> Railcar:
    railcar = Railcar.objects.create(
        real_id=manifest["railcar"],
        line=manifest["line"],
        camera=manifest["camera"],
        fingerprint=fingerprint,
        unloading_started_at=entries[0]["captured_at"],
        unloading_ended_at=entries[-1]["captured_at"],
        layer_source="manifest" if "layer" in entries[0] else "boxes",
    )
    ious = [
        box_iou(e["magnet_box"], e["railcar_box"])
        if e.get("magnet_box") and e.get("railcar_box")
        else None
        for e in entries
    ]
    runs = _layer_runs(entries, ious)
    # No keyframe yet: it is an eligible frame, and eligibility is settled by the quality checks
    # (`pipeline.conclude_checks` picks it).
    layers = Layer.objects.bulk_create(
        Layer(
            railcar=railcar,
            index=n,
            peak_iou=max((ious[p] for p in run if ious[p] is not None), default=None),
        )
        for n, run in enumerate(runs, start=1)
    )
    layer_of = {p: layer for layer, run in zip(layers, runs, strict=True) for p in run}
    Frame.objects.bulk_create(
        Frame(
            railcar=railcar,
            layer=layer_of.get(i),
            index=i,
            source_name=entry["file"],
            captured_at=entry["captured_at"],
            camera=entry.get("camera") or manifest["camera"],
            declared_sha256=entry["sha256"],
            content_sha256=verdict.content_sha256,
            file=name,
            size_bytes=len(verdict.data),
            width=verdict.width,
            height=verdict.height,
            image_format=verdict.image_format,
            magnet_box=entry.get("magnet_box"),
            railcar_box=entry.get("railcar_box"),
            iou=ious[i],
            rejection=verdict.rejection,
            rejection_detail=verdict.detail,
        )
        for i, (entry, verdict, name) in enumerate(zip(entries, verdicts, names, strict=True))
    )
    return railcar
