import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Frame, Layer, Railcar
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once
from tests.conftest import jpeg_bytes
from tests.labeling.unloadings import boxed_unloading, named_layers_unloading, run_checks

pytestmark = pytest.mark.django_db


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


def png_bomb(width: int = 40_000, height: int = 40_000) -> bytes:
    """A real PNG header claiming 1.6 Gpx, with a tiny compressed body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_it_ingests_an_unloading_with_named_layers(plant_client, plant, settings):
    unloading = named_layers_unloading(layers=2, per_layer=3)

    response = unloading.post(plant_client)

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True
    assert (body["frames"], body["eligible"], body["layers"]) == (6, 6, 2)
    railcar = Railcar.objects.get()
    assert str(railcar.uid) == body["railcar"]
    assert railcar.real_id == "RC-58231774"
    assert railcar.layer_source == "manifest"
    layers = list(railcar.layers.order_by("index"))
    assert [layer.frames.count() for layer in layers] == [3, 3]
    run_checks()
    layers = list(railcar.layers.order_by("index"))
    # Without boxes, the keyframe is the middle of the layer.
    assert [layer.keyframe.index for layer in layers] == [1, 4]
    event = AuditEvent.objects.get(action="unloading.ingested")
    assert event.actor == plant
    assert event.object_id == str(railcar.pk)
    assert event.payload["frames"] == 6


def test_it_stores_frames_under_their_hash_with_no_railcar_id_date_or_camera(
    plant_client, settings
):
    unloading = named_layers_unloading(railcar="RC-99887766")
    assert unloading.post(plant_client).status_code == 201

    for frame in Frame.objects.all():
        name = frame.file.name
        assert name == f"frames/{frame.content_sha256[:2]}/{frame.content_sha256[2:4]}/" + (
            f"{frame.content_sha256}.jpg"
        )
        for leak in ("RC-99887766", "99887766", "2026", "L2", "TOP"):
            assert leak not in name
        assert hashlib.sha256(frame.file.read()).hexdigest() == frame.content_sha256
    files = stored_files(Path(settings.MEDIA_ROOT))
    assert len(files) == 6
    assert all("RC-" not in str(p) and "2026" not in str(p) for p in files)


def test_it_strips_exif_without_touching_the_pixels(plant_client):
    exif = Image.Exif()
    exif[0x010E] = "railcar RC-12345678 line L2"  # ImageDescription
    exif[0x0132] = "2026:11:21 08:00:00"  # DateTime
    exif[0x0110] = "L2-TOP-1"  # Model
    data = jpeg_bytes(seed=3, exif=exif.tobytes())
    assert b"RC-12345678" in data
    unloading = named_layers_unloading(layers=1, per_layer=1)
    name = unloading.manifest["frames"][0]["file"]
    unloading.files[name] = data
    unloading.manifest["frames"][0]["sha256"] = hashlib.sha256(data).hexdigest()

    assert unloading.post(plant_client).status_code == 201

    stored = Frame.objects.get().file.read()
    assert b"RC-12345678" not in stored and b"Exif" not in stored
    assert not Image.open(io.BytesIO(stored)).getexif()
    original = Image.open(io.BytesIO(data)).tobytes()
    assert Image.open(io.BytesIO(stored)).tobytes() == original


def test_it_splits_layers_at_the_iou_threshold_and_picks_the_keyframe_at_the_peak(plant_client):
    # Two grabs; a one-frame dip (0.0) inside the first one does not split it.
    shape = [0, 0.1, 0.5, 1.0, 0.0, 0.6, 0.3, 0, 0, 0.4, 0.9, 0.7, 0]
    unloading = boxed_unloading(shape)

    response = unloading.post(plant_client)

    assert response.status_code == 201, response.content
    railcar = Railcar.objects.get()
    assert railcar.layer_source == "boxes"
    layers = list(railcar.layers.order_by("index"))
    assert [[f.index for f in layer.frames.order_by("index")] for layer in layers] == [
        [2, 3, 4, 5, 6],
        [9, 10, 11],
    ]
    run_checks()
    layers = list(railcar.layers.order_by("index"))
    assert [layer.keyframe.index for layer in layers] == [3, 10]
    assert layers[0].peak_iou == pytest.approx(0.4)
    # Frames between grabs are kept, in no layer.
    assert set(Frame.objects.filter(layer=None).values_list("index", flat=True)) == {
        0, 1, 7, 8, 12,
    }  # fmt: skip


def test_a_corrupt_peak_frame_hands_the_keyframe_to_the_nearest_decodable_one(plant_client):
    unloading = boxed_unloading([0, 0.5, 0.8, 1.0, 0.7, 0])
    unloading.files["f003.jpg"] = unloading.files["f003.jpg"][:200]  # truncated, checksum off

    response = unloading.post(plant_client)
    run_checks()

    assert response.status_code == 201
    layer = Layer.objects.get()
    assert layer.keyframe.index in (2, 4)
    assert layer.keyframe.index == 2  # tie on distance; the higher IoU (0.8 > 0.7) wins


def test_reposting_the_same_unloading_is_idempotent(plant_client, settings):
    unloading = named_layers_unloading()
    first = unloading.post(plant_client)
    files_after_first = sorted(stored_files(Path(settings.MEDIA_ROOT)))

    second = unloading.post(plant_client)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["railcar"] == first.json()["railcar"]
    assert second.json()["created"] is False
    assert Railcar.objects.count() == 1
    assert Frame.objects.count() == 6
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 1
    assert sorted(stored_files(Path(settings.MEDIA_ROOT))) == files_after_first


def test_a_different_manifest_for_an_already_ingested_unloading_is_a_conflict(plant_client):
    unloading = named_layers_unloading()
    assert unloading.post(plant_client).status_code == 201
    unloading.manifest["camera"] = "L2-TOP-2"

    response = unloading.post(plant_client)

    assert response.status_code == 409
    assert "already ingested" in response.json()["detail"]
    assert Railcar.objects.count() == 1


def _malformed(mutate):
    unloading = named_layers_unloading()
    mutate(unloading.manifest)
    return unloading


MALFORMED = {
    "missing railcar": (lambda m: m.pop("railcar"), "railcar"),
    "railcar with markup": (lambda m: m.update(railcar="<script>alert(1)</script>"), "railcar"),
    "railcar too long": (lambda m: m.update(railcar="R" * 65), "railcar"),
    "line not a string": (lambda m: m.update(line=["L2"]), "line"),
    "no frames": (lambda m: m.update(frames=[]), "frames"),
    "frames not a list": (lambda m: m.update(frames={"a": 1}), "frames"),
    "bad sha256": (lambda m: m["frames"][0].update(sha256="abc"), "frames"),
    "naive capture time": (
        lambda m: m["frames"][0].update(captured_at="2026-11-21T08:00:00"),
        "frames",
    ),
    "capture time nonsense": (lambda m: m["frames"][0].update(captured_at="yesterday"), "frames"),
    "frames out of time order": (
        lambda m: m["frames"][1].update(captured_at="2026-11-21T07:00:00Z"),
        "frames",
    ),
    "file listed twice": (lambda m: m["frames"][1].update(file=m["frames"][0]["file"]), "frames"),
    "path traversal": (lambda m: m["frames"][0].update(file="../../etc/passwd"), "frames"),
    "absolute path": (lambda m: m["frames"][0].update(file="/etc/passwd"), "frames"),
    "hidden file": (lambda m: m["frames"][0].update(file=".htaccess"), "frames"),
    "inverted box": (
        lambda m: m["frames"][0].update(magnet_box=[10, 10, 5, 20], railcar_box=[0, 0, 9, 9]),
        "frames",
    ),
    "box of strings": (lambda m: m["frames"][0].update(magnet_box=["a", 1, 2, 3]), "frames"),
    "infinite box": (lambda m: m["frames"][0].update(magnet_box=[0, 0, 1e400, 5]), "frames"),
    "some frames without a layer": (lambda m: m["frames"][0].pop("layer"), "frames"),
    "no layers and no boxes": (lambda m: [f.pop("layer") for f in m["frames"]], "frames"),
    "layer numbers with a gap": (
        lambda m: [f.update(layer=3) for f in m["frames"] if f["layer"] == 2],
        "frames",
    ),
    "negative layer": (lambda m: m["frames"][0].update(layer=-1), "frames"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_manifest_gets_a_400_with_field_errors_and_writes_nothing(
    case, plant_client, settings
):
    mutate, field = MALFORMED[case]
    unloading = _malformed(mutate)

    response = unloading.post(plant_client)

    assert response.status_code == 400, response.content
    assert field in response.json()
    assert Railcar.objects.count() == 0
    assert Frame.objects.count() == 0
    assert AuditEvent.objects.count() == 0
    assert stored_files(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize(
    "manifest",
    [b"{not json", b"", b"[1, 2]", b"\xff\xfe\x00garbage", b"[" * 100_000 + b"]" * 100_000],
    ids=["broken json", "empty", "a list", "not utf-8", "nesting bomb"],
)
def test_a_manifest_that_is_not_a_json_object_gets_a_400(manifest, plant_client):
    response = plant_client.post(
        "/api/v1/unloadings/", {"manifest": io.BytesIO(manifest)}, format="multipart"
    )

    assert response.status_code == 400, response.content
    assert Railcar.objects.count() == 0


def test_too_many_frames_get_a_400(plant_client, settings):
    settings.SCRAPANNOT = {**settings.SCRAPANNOT, "MAX_FRAMES_PER_UNLOADING": 4}

    response = named_layers_unloading(layers=2, per_layer=3).post(plant_client)

    assert response.status_code == 400
    assert "At most 4 frames" in json.dumps(response.json())


def test_files_not_in_the_manifest_get_a_400(plant_client):
    unloading = named_layers_unloading()
    files = {**unloading.files, "payload.sh": b"#!/bin/sh\nrm -rf /\n"}

    response = unloading.post(plant_client, files=files)

    assert response.status_code == 400
    assert "payload.sh" in response.json()["files"][0]
    assert Railcar.objects.count() == 0


def _bad_frame_bytes(kind: str, good: bytes) -> bytes:
    if kind == "checksum":
        return good[:-20] + bytes(20)
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "not_image":
        return b"GIF89a? no: this is a shell script\n" * 10
    if kind == "corrupt":
        return good[:200] + bytes(range(256)) * 8
    if kind == "decompression_bomb":
        return png_bomb()
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["checksum", "truncated", "not_image", "corrupt", "decompression_bomb"]
)
def test_a_bad_frame_is_kept_as_ineligible_with_its_reason(kind, plant_client, settings):
    unloading = named_layers_unloading()
    name = unloading.manifest["frames"][1]["file"]
    bad = _bad_frame_bytes(kind, unloading.files[name])
    unloading.files[name] = bad
    if kind != "checksum":  # the plant's checksum matches what it sent; the content is bad
        unloading.frame(name)["sha256"] = hashlib.sha256(bad).hexdigest()

    response = unloading.post(plant_client)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["frames"], body["eligible"]) == (6, 5)
    assert body["rejected"] == [
        {"file": name, "reason": kind, "detail": Frame.objects.get(index=1).rejection_detail}
    ]
    frame = Frame.objects.get(index=1)
    assert frame.rejection == kind and frame.rejection_detail
    # Kept for forensics, out of the served tree, under its hash.
    assert frame.file.name.startswith("quarantine/")
    assert frame.file.read() == bad
    run_checks()
    assert Layer.objects.get(index=1).keyframe_id != frame.pk


def test_an_oversized_frame_is_refused_but_recorded(plant_client, settings):
    settings.SCRAPANNOT = {**settings.SCRAPANNOT, "MAX_FRAME_BYTES": 1500}
    unloading = named_layers_unloading()
    name = unloading.manifest["frames"][0]["file"]
    big = jpeg_bytes(400, 300, seed=9)
    unloading.files[name] = big
    unloading.frame(name)["sha256"] = hashlib.sha256(big).hexdigest()

    response = unloading.post(plant_client)

    assert response.status_code == 201
    frame = Frame.objects.get(index=0)
    assert frame.rejection == "oversized"
    assert str(len(big)) in frame.rejection_detail
    assert not frame.file


def test_a_frame_missing_from_the_upload_is_recorded_as_missing(plant_client):
    unloading = named_layers_unloading()
    name = unloading.manifest["frames"][2]["file"]
    del unloading.files[name]

    response = unloading.post(plant_client)

    assert response.status_code == 201
    assert Frame.objects.get(source_name=name).rejection == "missing"


def test_a_frame_sent_twice_under_one_name_gets_a_400(plant_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    unloading = named_layers_unloading(layers=1, per_layer=1)
    name, data = next(iter(unloading.files.items()))
    body = {
        "manifest": json.dumps(unloading.manifest),
        name: [SimpleUploadedFile(name, data), SimpleUploadedFile(name, data)],
    }

    response = plant_client.post("/api/v1/unloadings/", body, format="multipart")

    assert response.status_code == 400
    assert Railcar.objects.count() == 0


@pytest.mark.parametrize("who", ["anonymous", "annotator", "senior", "outsider"])
def test_only_plant_systems_and_admins_may_post_unloadings(who, request):
    client = APIClient()
    if who != "anonymous":
        user = request.getfixturevalue(who)
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")

    response = named_layers_unloading().post(client)

    assert response.status_code == (401 if who == "anonymous" else 403)
    assert Railcar.objects.count() == 0


def test_an_admin_may_post_an_unloading(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)

    assert named_layers_unloading().post(client).status_code == 201


def test_a_bad_token_is_refused(plant):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)

    assert named_layers_unloading().post(client).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_of_one_unloading_create_one_railcar(on_postgresql, plant):
    token = Token.objects.create(user=plant).key
    unloading = named_layers_unloading()

    def post() -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return unloading.post(client).status_code

    statuses = run_at_once(post, threads=6)

    assert sorted(statuses) == [200] * 5 + [201]
    assert Railcar.objects.count() == 1
    assert Frame.objects.count() == 6
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 1
