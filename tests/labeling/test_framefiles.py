"""A frame's bytes (labeling/framefiles.py): stored once under their hash, read back as stored,
served saying nothing but the pixels; a missing file is one exception that each kind of caller
treats one way (a page: the 404 of a frame that does not exist; a batch job: log and skip; the
quality checks: a failed decode check)."""

import hashlib
import io
import logging
import uuid

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from rest_framework.test import APIClient

from labeling import pool
from labeling.embedding_jobs import embed_railcar_keyframes
from labeling.framefiles import (
    FrameFileMissing,
    frame_image_response,
    open_frame,
    read_frame,
    store_frame,
)
from labeling.imagefiles import FrameBytesVerdict
from labeling.models import Frame, FrameCheck, Railcar
from tests.conftest import jpeg_bytes
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.unloadings import named_layers_unloading, run_checks

pytestmark = pytest.mark.django_db

SECRET = "RC-31415926"  # the railcar's real id, hidden in the uploaded files' metadata


def ingest(plant_client: APIClient, files: dict[int, bytes]) -> Railcar:
    """Post a one-layer unloading of three frames through the API, frame i's bytes from
    `files` where given."""
    unloading = named_layers_unloading(railcar=SECRET, layers=1, per_layer=3)
    for position, data in files.items():
        entry = unloading.manifest["frames"][position]
        unloading.files[entry["file"]] = data
        entry["sha256"] = hashlib.sha256(data).hexdigest()
    assert unloading.post(plant_client).status_code == 201
    return Railcar.objects.get()


def jpeg_with_exif() -> bytes:
    exif = Image.Exif()
    exif[0x010E] = f"railcar {SECRET} line L2"  # ImageDescription
    exif[0x0132] = "2026:11:21 08:00:00"  # DateTime
    return jpeg_bytes(seed=7, exif=exif.tobytes())


def png_with_text() -> bytes:
    info = PngInfo()
    info.add_text("Comment", f"railcar {SECRET}")
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 90, 60)).save(out, format="PNG", pnginfo=info)
    return out.getvalue()


# --- storing and reading ------------------------------------------------------------------------


def test_equal_bytes_are_stored_once_under_their_hash_and_read_back_as_stored(plant_client):
    same = jpeg_bytes(seed=99)
    railcar = ingest(plant_client, {0: same, 1: same})
    first, second, third = railcar.frames.order_by("index")

    assert first.file.name == second.file.name != third.file.name
    assert first.content_sha256 in first.file.name and SECRET not in first.file.name
    assert read_frame(frame=first) == read_frame(frame=second)
    assert hashlib.sha256(read_frame(frame=first)).hexdigest() == first.content_sha256
    with open_frame(frame=third) as handle:
        assert handle.read(10) + handle.read() == read_frame(frame=third)
    stored = read_frame(frame=first)
    again = FrameBytesVerdict(
        rejection="", data=stored, content_sha256=first.content_sha256, extension="jpg"
    )
    assert store_frame(verdict=again) == first.file.name  # already there: kept, not copied
    assert default_storage.listdir(first.file.name.rpartition("/")[0])[1] == [
        first.file.name.rpartition("/")[2]
    ]


def test_a_frame_without_its_file_raises_frame_file_missing(plant_client):
    frame = ingest(plant_client, {}).frames.order_by("index").first()
    default_storage.delete(frame.file.name)

    with pytest.raises(FrameFileMissing, match="file missing from storage"):
        read_frame(frame=frame)
    frame.file = ""
    with pytest.raises(FrameFileMissing, match="no stored file"):
        read_frame(frame=frame)
    # Code that treats every unreadable file alike keeps working.
    assert issubclass(FrameFileMissing, FileNotFoundError)


# --- serving --------------------------------------------------------------------------------------


def test_a_served_frame_is_its_stored_bytes_with_no_name_date_or_validator(plant_client):
    frame = ingest(plant_client, {}).frames.order_by("index").first()

    response = frame_image_response(frame=frame)

    assert response.content == read_frame(frame=frame)
    assert response["Content-Type"] == "image/jpeg"
    assert response["Cache-Control"] == "private, max-age=600"
    assert response["Content-Disposition"] == "inline; filename=frame"
    for header in ("ETag", "Last-Modified", "Content-Location", "Expires"):
        assert not response.has_header(header), header
    headers = str(dict(response.items()))
    for leak in (SECRET, frame.source_name, frame.file.name, frame.content_sha256, "2026"):
        assert leak not in headers


def test_served_frames_carry_no_exif_or_text_metadata(plant_client):
    railcar = ingest(plant_client, {0: jpeg_with_exif(), 1: png_with_text()})
    jpeg_frame, png_frame = railcar.frames.order_by("index")[:2]

    for frame, content_type in ((jpeg_frame, "image/jpeg"), (png_frame, "image/png")):
        response = frame_image_response(frame=frame)
        assert response["Content-Type"] == content_type
        assert SECRET.encode() not in response.content and b"Exif" not in response.content
        image = Image.open(io.BytesIO(response.content))
        assert not image.getexif()
        assert not {"exif", "comment", "Comment", "xmp", "XML:com.adobe.xmp"} & set(image.info)


def test_a_frame_rejected_at_ingest_is_never_served(plant_client):
    raw = jpeg_with_exif()
    railcar = ingest(plant_client, {0: raw})
    frame = railcar.frames.order_by("index").first()
    Frame.objects.filter(pk=frame.pk).update(rejection=Frame.Rejection.CORRUPT)
    frame.refresh_from_db()
    assert read_frame(frame=frame)  # its bytes are there ...

    with pytest.raises(FrameFileMissing):
        frame_image_response(frame=frame)  # ... but never served


# --- a missing file, per kind of caller ----------------------------------------------------------


def test_the_annotators_image_and_mask_tool_answer_a_missing_file_like_a_frame_from_nowhere():
    railcar = pool_railcar()
    (annotator,) = annotators(1)
    uid = pool.next_assignment(annotator=annotator).uid
    frame = railcar.frames.order_by("index").first()
    default_storage.delete(frame.file.name)
    client = APIClient()
    client.force_login(annotator)
    base = f"/api/v1/assignments/{uid}/frames"
    prompts = {"prompts": {"points": [[10, 10]], "labels": [1]}}

    for method, suffix, body in (("get", "image/", None), ("post", "mask-proposals/", prompts)):
        gone = getattr(client, method)(f"{base}/{frame.uid}/{suffix}", body, format="json")
        nowhere = getattr(client, method)(f"{base}/{uuid.uuid4()}/{suffix}", body, format="json")
        assert gone.status_code == nowhere.status_code == 404, suffix
        assert (gone.content, dict(gone.items())) == (nowhere.content, dict(nowhere.items()))


def test_a_thumbnail_of_a_frame_whose_file_is_gone_is_a_404(admin_user):
    frame = pool_railcar().frames.order_by("index").first()
    default_storage.delete(frame.file.name)
    client = Client()
    client.force_login(admin_user)

    response = client.get(f"/ops/frames/{frame.uid}/thumbnail.jpg")

    assert response.status_code == 404


def test_the_quality_checks_fail_a_frame_whose_file_is_gone_with_the_reason(plant_client):
    railcar = ingest(plant_client, {})
    gone = railcar.frames.order_by("index")[1]
    default_storage.delete(gone.file.name)

    run_checks()

    (check,) = FrameCheck.objects.filter(frame=gone)
    assert (check.name, check.passed, check.detail) == (
        "decode",
        False,
        "file missing from storage",
    )
    gone.refresh_from_db()
    assert gone.quality == Frame.Quality.INELIGIBLE
    assert railcar.layers.get().keyframe.quality == Frame.Quality.ELIGIBLE


def test_the_embedding_job_logs_and_skips_a_keyframe_whose_file_is_gone(settings, caplog):
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT, settings.SAM_DEVICE = "tiny", "", "cpu"
    railcar = pool_railcar(layers=2, frames_per_layer=1)
    gone, kept = (layer.keyframe for layer in railcar.layers.order_by("index"))
    default_storage.delete(gone.file.name)

    with caplog.at_level(logging.ERROR, logger="labeling.embedding_jobs"):
        computed = embed_railcar_keyframes(railcar_id=railcar.pk)

    assert computed == 1
    assert f"cannot embed frame {gone.pk}" in caplog.text
    assert f"frame {kept.pk}" not in caplog.text
