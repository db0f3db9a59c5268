"""A frame's file on its way in: check the bytes that arrived, store them content-addressed,
take them back when the ingest that wrote them fails. Shared by ingest and its repair."""

from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from labeling.imagefiles import FrameBytesVerdict, check_frame_bytes
from labeling.models import Frame


class FrameSource(Protocol):
    """Where a frame's bytes come from: an uploaded file or a file on disk."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...


def frame_storage_name(verdict: FrameBytesVerdict) -> str:
    """Content-addressed: nothing about the railcar, date or camera is in a stored name."""
    digest = verdict.content_sha256
    if verdict.rejection:
        return f"quarantine/{digest[:2]}/{digest}"
    return f"frames/{digest[:2]}/{digest[2:4]}/{digest}.{verdict.extension}"


def store(verdict: FrameBytesVerdict, written: list[str]) -> str:
    """Store a frame's bytes under its content name; names this call created go to `written`,
    so that a failed ingest can take them back (`discard`)."""
    if not verdict.data:
        return ""
    name = frame_storage_name(verdict)
    if default_storage.exists(name):
        return name  # same content, same name: stored once
    saved = default_storage.save(name, ContentFile(verdict.data))
    if saved != name:
        # A concurrent ingest stored the same content first; keep the canonical name.
        default_storage.delete(saved)
    else:
        written.append(name)
    return name


def discard(written: list[str]) -> None:
    """Remove the files a failed ingest wrote, so that it leaves no orphan behind. (Another
    ingest carrying byte-identical frames at the same instant could have found one of them and
    referenced it; its quality check would then mark that frame "file missing from storage",
    which is visible and repairable by a re-post.)"""
    for name in written:
        default_storage.delete(name)


def check_source(entry: Mapping[str, Any], source: FrameSource | None) -> FrameBytesVerdict:
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
