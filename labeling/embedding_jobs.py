"""Precompute SAM image embeddings of a railcar's keyframes (used by the mask tool)."""

import logging

from labeling import sam
from labeling.framefiles import FrameFileMissing
from labeling.models import Frame, Layer

logger = logging.getLogger(__name__)


def embed_railcar_keyframes(*, railcar_id: int) -> int:
    """Embed each eligible keyframe not embedded yet; return how many were computed."""
    if not sam.sam_enabled():
        return 0
    keyframe_ids = Layer.objects.filter(railcar_id=railcar_id, keyframe__isnull=False).values(
        "keyframe_id"
    )
    frames = Frame.objects.filter(pk__in=keyframe_ids, quality=Frame.Quality.ELIGIBLE)
    computed = 0
    for frame in frames:
        try:
            computed += sam.ensure_embedding(frame=frame)
        except (ValueError, FrameFileMissing):
            # A frame that cannot be embedded (its stored file is gone or unreadable) is
            # skipped: the mask tool computes the embedding on first use, or falls back.
            logger.exception("cannot embed frame %s", frame.pk)
    return computed
