"""A frame's file on its way in: check the bytes that arrived (labeling.framefiles stores them).
Shared by ingest and its repair."""

from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings

from labeling.imagefiles import FrameBytesVerdict, check_frame_bytes
from labeling.models import Frame


class FrameSource(Protocol):
    """Where a frame's bytes come from: an uploaded file or a file on disk."""

    @property
    def size(self) -> int: ...

    def read(self) -> bytes: ...


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
