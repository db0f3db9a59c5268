"""A frame's bytes: where they are stored, how they are read, how they are served.

Ingest stores each frame under its content hash (`store_frame`), so no file name says anything
about the railcar, the date or the camera; the bytes themselves were cleaned of metadata before
(`labeling.imagefiles`). Everything that needs the bytes later reads them here (`read_frame`, or
`open_frame` to stream them), and the pages serve them with `frame_image_response` only.

A frame without its file raises one exception, `FrameFileMissing`, and each kind of caller treats
it one way:

- a page or an API answers the same 404 as for a frame that does not exist, never an error that
  tells the two apart (the annotator's API, the case page, the mask tool, the thumbnails);
- a batch job logs the frame and skips it (SAM embeddings, model features);
- the quality pipeline fails the frame's decode check with the reason, so it never reaches an
  annotator;
- a dataset export stops with an error naming the frame: an archive missing a frame is not the
  frozen version (as a frame whose bytes no longer match its hash stops it).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import HttpResponse

from labeling.imagefiles import FrameBytesVerdict
from labeling.models import Frame


class FrameFileMissing(FileNotFoundError):
    """The frame has no stored file, or the storage no longer has it (or, when serving, its
    bytes were quarantined at ingest). A FileNotFoundError, so code that treats any unreadable
    file alike (`except OSError`) keeps doing so."""


def frame_storage_name(verdict: FrameBytesVerdict) -> str:
    """Content-addressed: nothing about the railcar, date or camera is in a stored name."""
    digest = verdict.content_sha256
    if verdict.rejection:
        return f"quarantine/{digest[:2]}/{digest}"
    return f"frames/{digest[:2]}/{digest[2:4]}/{digest}.{verdict.extension}"


def store_frame(*, verdict: FrameBytesVerdict, written: list[str] | None = None) -> str:
    """Store a checked frame's bytes (a rejected one's in quarantine, for forensics); the name
    for `Frame.file`, "" when there are no bytes to keep. Names this call created are appended
    to `written`, so that an ingest that fails can take them back (`discard_frames`)."""
    if not verdict.data:
        return ""
    name = frame_storage_name(verdict)
    if default_storage.exists(name):
        return name  # same content, same name: stored once
    saved = default_storage.save(name, ContentFile(verdict.data))
    if saved != name:
        # A concurrent ingest stored the same content first; keep the canonical name.
        default_storage.delete(saved)
    elif written is not None:
        written.append(name)
    return name


def discard_frames(written: list[str]) -> None:
    """Remove the files a failed ingest wrote, so that it leaves no orphan behind. (Another
    ingest carrying byte-identical frames at the same instant could have found one of them and
    referenced it; its quality check would then mark that frame "file missing from storage",
    which is visible and repairable by a re-post.)"""
    for name in written:
        default_storage.delete(name)


@contextmanager
def open_frame(*, frame: Frame) -> Iterator[IO[bytes]]:
    """The frame's stored file, open for reading (to stream it); FrameFileMissing without one.

    Other storage errors (a network filesystem that does not answer) propagate: they may pass,
    and a task retries them.
    """
    if not frame.file:
        raise FrameFileMissing("no stored file")
    try:
        # The field's storage, by name: `frame.file.open()` would keep the handle on the model.
        handle = frame.file.storage.open(frame.file.name, "rb")
    except FileNotFoundError as exc:
        raise FrameFileMissing("file missing from storage") from exc
    with handle:
        yield handle


def read_frame(*, frame: Frame) -> bytes:
    """The frame's stored bytes; FrameFileMissing when it has none or they are gone."""
    with open_frame(frame=frame) as handle:
        return handle.read()


def frame_image_response(*, frame: Frame) -> HttpResponse:
    """The frame's image for a page, saying nothing about the frame but its pixels.

    The bytes are the cleaned ones stored at ingest (no EXIF or other metadata); the response
    carries no file name, date or validator (no Last-Modified, no ETag) and may be cached by the
    browser only. A frame rejected at ingest is never served: its quarantined bytes are the raw
    upload, metadata and all. FrameFileMissing then, and when the file is gone; the caller
    answers it as it answers a frame that does not exist.
    """
    if frame.rejection:
        raise FrameFileMissing("a frame rejected at ingest has no image to serve")
    data = read_frame(frame=frame)
    # Ingest stores JPEG and PNG as they came (cleaned) and re-encodes anything else to PNG.
    content_type = "image/png" if frame.file.name.endswith(".png") else "image/jpeg"
    response = HttpResponse(data, content_type=content_type)
    response["Cache-Control"] = "private, max-age=600"
    response["Content-Disposition"] = "inline; filename=frame"
    return response
