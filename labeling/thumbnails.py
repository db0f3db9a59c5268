"""Small JPEG previews of frames for the operations pages, made once and kept in storage."""

import io

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from labeling.framefiles import FrameFileMissing, read_frame
from labeling.models import Frame

THUMBNAIL_SIZE = (320, 180)


def thumbnail_bytes(*, frame: Frame) -> bytes | None:
    """None for a frame with no decodable image (rejected at ingest) or whose file is gone: the
    page answers both as it answers a frame that does not exist."""
    if frame.rejection or not frame.file:
        return None
    name = f"thumbs/{frame.content_sha256[:2]}/{frame.content_sha256}.jpg"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as handle:
            return handle.read()
    try:
        data = read_frame(frame=frame)
    except FrameFileMissing:
        return None
    image = Image.open(io.BytesIO(data))
    image.draft("RGB", THUMBNAIL_SIZE)  # JPEG: decode at reduced scale, much faster
    image = image.convert("RGB")
    image.thumbnail(THUMBNAIL_SIZE)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    data = out.getvalue()
    if not default_storage.exists(name):
        default_storage.save(name, ContentFile(data))
    return data
