"""Check an uploaded frame's bytes and strip its metadata before it is stored.

Every failure is a verdict (`Frame.Rejection`), never an exception: a frame that cannot be used is
kept as an ineligible frame with its reason. JPEG and PNG are cleaned losslessly by dropping
metadata segments/chunks; other raster formats are re-encoded to PNG, which carries none.
"""

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from labeling.models import Frame

Rejection = Frame.Rejection

ACCEPTED_FORMATS = {"JPEG", "PNG", "BMP", "TIFF", "WEBP"}

# JPEG markers kept: SOFn, DHT, DQT, DRI, DAC, SOS and APP14 ("Adobe", which decides how the
# colour channels decode). Dropped: APP0-APP13 and APP15 (JFIF/EXIF/XMP/ICC/IPTC, thumbnails
# and maker notes) and COM.
_JPEG_KEEP_APP = {0xEE}
# PNG chunks kept: the critical ones and those that change how pixels look.
_PNG_KEEP = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT"}


@dataclass(frozen=True)
class FrameBytesVerdict:
    rejection: str  # "" when the frame decodes and is stored
    detail: str = ""
    data: bytes = b""  # the bytes to store: cleaned image, or the raw bytes of a rejected file
    content_sha256: str = ""
    extension: str = ""
    image_format: str = ""
    width: int | None = None
    height: int | None = None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rejected(rejection: str, detail: str, data: bytes, **dims: int | None) -> FrameBytesVerdict:
    return FrameBytesVerdict(
        rejection=rejection,
        detail=detail[:255],
        data=data,
        content_sha256=sha256_hex(data) if data else "",
        **dims,
    )


def check_frame_bytes(
    data: bytes, *, declared_sha256: str, max_bytes: int, max_pixels: int
) -> FrameBytesVerdict:
    """Verify checksum, decode fully, bound the pixel count; return cleaned bytes to store."""
    if len(data) > max_bytes:
        return _rejected(Rejection.OVERSIZED, f"{len(data)} bytes > limit {max_bytes}", b"")
    if sha256_hex(data) != declared_sha256:
        return _rejected(Rejection.CHECKSUM, "SHA-256 of the file differs from the manifest", data)
    try:
        with warnings.catch_warnings():
            # Pillow warns between MAX_IMAGE_PIXELS and twice that; we enforce our own bound.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image_format = image.format or ""
            width, height = image.size
            if image_format not in ACCEPTED_FORMATS:
                return _rejected(Rejection.NOT_IMAGE, f"unsupported format {image_format}", data)
            if width * height > max_pixels:
                return _rejected(
                    Rejection.DECOMPRESSION_BOMB,
                    f"{width}x{height} = {width * height} px > limit {max_pixels}",
                    data,
                    width=width,
                    height=height,
                )
            image.load()
    except Image.DecompressionBombError as exc:
        return _rejected(Rejection.DECOMPRESSION_BOMB, str(exc), data)
    except UnidentifiedImageError:
        return _rejected(Rejection.NOT_IMAGE, "no image format recognised", data)
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as exc:
        message = str(exc) or exc.__class__.__name__
        kind = Rejection.TRUNCATED if "truncat" in message.lower() else Rejection.CORRUPT
        return _rejected(kind, message, data)
    if image_format == "JPEG" and not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        # libjpeg pads a stream cut short at a scan boundary without complaint.
        return _rejected(Rejection.TRUNCATED, "JPEG end-of-image marker missing", data)
    try:
        cleaned, extension = strip_metadata(data, image_format=image_format, image=image)
    except ValueError as exc:
        return _rejected(Rejection.CORRUPT, f"unreadable structure: {exc}", data)
    return FrameBytesVerdict(
        rejection="",
        data=cleaned,
        content_sha256=sha256_hex(cleaned),
        extension=extension,
        image_format=image_format,
        width=width,
        height=height,
    )


def strip_metadata(data: bytes, *, image_format: str, image: Image.Image) -> tuple[bytes, str]:
    if image_format == "JPEG":
        return strip_jpeg(data), "jpg"
    if image_format == "PNG":
        return strip_png(data), "png"
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), "png"


def strip_jpeg(data: bytes) -> bytes:
    """Drop APPn (but Adobe APP14) and COM segments; copy everything from SOS on verbatim."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("no JPEG start-of-image marker")
    out = bytearray(b"\xff\xd8")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"expected a marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the rest is entropy-coded data and EOI
            out += data[pos:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            out += data[pos : pos + 2]
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2 or pos + 2 + length > len(data):
            raise ValueError(f"segment length {length} out of range at byte {pos}")
        segment_end = pos + 2 + length
        is_app = 0xE0 <= marker <= 0xEF
        if not (marker == 0xFE or (is_app and marker not in _JPEG_KEEP_APP)):
            out += data[pos:segment_end]
        pos = segment_end
    raise ValueError("no start-of-scan marker")


def strip_png(data: bytes) -> bytes:
    signature = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(signature):
        raise ValueError("no PNG signature")
    out = bytearray(signature)
    pos = len(signature)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunk_type = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if end > len(data):
            raise ValueError(f"chunk {chunk_type!r} runs past the end of the file")
        if chunk_type in _PNG_KEEP:
            out += data[pos:end]
        pos = end
        if chunk_type == b"IEND":
            return bytes(out)
    raise ValueError("no IEND chunk")
