"""Ingest one unloading: manifest + frame files -> railcar, layers, frames, one audit event.

The API view and the `ingest` command both call `ingest_unloading`. The manifest is validated
first (`labeling.manifest`); a bad frame file never fails the ingest, it becomes an ineligible
frame with its reason. Re-sending the same unloading returns the railcar ingested the first time,
with the frames that were missing or failed their checksum filled in from the re-post.
"""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q

from labeling.framefiles import discard_frames, store_frame
from labeling.imagefiles import FrameBytesVerdict
from labeling.ingest_files import FrameSource, check_source
from labeling.ingest_repair import repair_frames
from labeling.layers import box_iou, runs_above
from labeling.models import Frame, Layer, Railcar
from labeling.signals import unloading_ingested
from scrapannot import audit
from scrapannot.audit import canonical_json


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
    repaired: int = 0  # frames a re-post filled in (missing or failed checksum before)


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


def _result(railcar: Railcar, *, created: bool, repaired: int = 0) -> IngestResult:
    frames = list(railcar.frames.order_by("index"))
    return IngestResult(
        railcar=railcar,
        created=created,
        repaired=repaired,
        frames=len(frames),
        eligible=sum(1 for f in frames if not f.rejection),
        layers=railcar.layers.count(),
        rejected=[
            {"file": f.source_name, "reason": f.rejection, "detail": f.rejection_detail}
            for f in frames
            if f.rejection
        ],
    )


def _conflict() -> UnloadingConflict:
    return UnloadingConflict(
        "This railcar's unloading at this line and start time was already ingested with a "
        "different manifest."
    )


def _claim(manifest: Mapping[str, Any], fingerprint: str) -> tuple[Railcar, bool]:
    """Insert the railcar row, or lock the row that already holds this unloading's identity
    (railcar, line, start time: `railcar_unloading_unique`). Insert-or-conflict, not
    check-then-insert: an insert that collides with an uncommitted one waits on the unique index
    until the other transaction ends, so two concurrent posts can never both create a railcar,
    and the loser reads the winner's committed row."""
    entries = manifest["frames"]
    identity = {
        "real_id": manifest["railcar"],
        "line": manifest["line"],
        "unloading_started_at": entries[0]["captured_at"],
    }
    try:
        with transaction.atomic():  # a savepoint: the outer transaction survives a collision
            railcar = Railcar.objects.create(
                **identity,
                camera=manifest["camera"],
                fingerprint=fingerprint,
                unloading_ended_at=entries[-1]["captured_at"],
                layer_source="manifest" if "layer" in entries[0] else "boxes",
            )
            return railcar, True
    except IntegrityError:
        pass
    # The identity is taken, or the fingerprint is (the same manifest with its times written in
    # another offset); either way the unloading was ingested before.
    found = Railcar.objects.select_for_update().filter(Q(**identity) | Q(fingerprint=fingerprint))
    railcar = found.order_by("pk").first()
    if railcar is None:  # the colliding row was deleted meanwhile: let the client retry
        raise _conflict()
    return railcar, False


def ingest_unloading(
    *,
    manifest: Mapping[str, Any],
    sources: Mapping[str, FrameSource],
    actor: AbstractBaseUser | None = None,
    actor_label: str | None = None,
) -> IngestResult:
    """Ingest a validated manifest (`UnloadingManifestSerializer.validated_data`): a new
    unloading is created (201), the same one again is repaired where it can be (200, see
    `labeling.ingest_repair`), a different manifest for the same identity is a conflict."""
    fingerprint = manifest_fingerprint(manifest)
    if Railcar.objects.filter(fingerprint=fingerprint).exists():
        # A plant's retry: no need to hash every frame again, only those it may repair.
        return _repost(manifest, fingerprint, sources, actor=actor, actor_label=actor_label)
    entries = manifest["frames"]
    # The slow part (hashing, decoding) happens before the transaction opens; nothing is written
    # until this request has won the unloading's identity.
    verdicts = [check_source(entry, sources.get(entry["file"])) for entry in entries]
    written: list[str] = []
    try:
        with transaction.atomic():
            railcar, created = _claim(manifest, fingerprint)
            if not created:
                return _answer_repost(railcar, manifest, fingerprint, sources, actor, actor_label)
            names = [store_frame(verdict=verdict, written=written) for verdict in verdicts]
            _create_rows(railcar, manifest, entries, verdicts, names)
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
    except BaseException:
        discard_frames(written)
        raise
    return result


def _repost(
    manifest: Mapping[str, Any],
    fingerprint: str,
    sources: Mapping[str, FrameSource],
    *,
    actor: AbstractBaseUser | None,
    actor_label: str | None,
) -> IngestResult:
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().get(fingerprint=fingerprint)
        return _answer_repost(railcar, manifest, fingerprint, sources, actor, actor_label)


def _answer_repost(
    railcar: Railcar,
    manifest: Mapping[str, Any],
    fingerprint: str,
    sources: Mapping[str, FrameSource],
    actor: AbstractBaseUser | None,
    actor_label: str | None,
) -> IngestResult:
    """Inside the transaction that holds the railcar's row lock."""
    if railcar.fingerprint != fingerprint:
        raise _conflict()
    repaired = repair_frames(
        railcar=railcar,
        entries={e["file"]: e for e in manifest["frames"]},
        sources=sources,
        actor=actor,
        actor_label=actor_label,
    )
    return _result(railcar, created=False, repaired=repaired)


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
    railcar: Railcar,
    manifest: Mapping[str, Any],
    entries: list[dict[str, Any]],
    verdicts: list[FrameBytesVerdict],
    names: list[str],
) -> None:
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
