"""A plant's re-post repairs what transport broke; a failed ingest leaves no file behind; every
refusal is JSON with a reason."""

import hashlib
import json
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.ingest import ingest_unloading
from labeling.manifest import UnloadingManifestSerializer
from labeling.models import Frame, Railcar
from scrapannot.models import AuditEvent
from tests.labeling.unloadings import named_layers_unloading

pytestmark = pytest.mark.django_db


def stored_files(media_root: Path) -> list[Path]:
    return [p for p in media_root.rglob("*") if p.is_file()] if media_root.exists() else []


def test_a_repost_fills_in_a_frame_that_was_missing_and_checks_the_railcar_again(
    plant_client, django_capture_on_commit_callbacks
):
    unloading = named_layers_unloading(layers=3, per_layer=2)
    name = unloading.manifest["frames"][2]["file"]
    files = {n: d for n, d in unloading.files.items() if n != name}
    with django_capture_on_commit_callbacks(execute=True):
        assert unloading.post(plant_client, files=files).status_code == 201
    assert Frame.objects.get(source_name=name).rejection == "missing"

    with django_capture_on_commit_callbacks(execute=True):
        response = unloading.post(plant_client)

    assert response.status_code == 200
    assert response.json()["repaired"] == 1
    assert response.json()["rejected"] == []
    frame = Frame.objects.get(source_name=name)
    assert frame.rejection == "" and frame.file.name.startswith("frames/")
    # The checks ran again (eagerly in tests) and measured the repaired frame.
    assert frame.quality != Frame.Quality.PENDING and frame.checks.count() > 1
    event = AuditEvent.objects.get(action="unloading.repaired")
    assert event.payload["frames"] == [{"file": name, "before": "missing", "after": ""}]
    assert AuditEvent.objects.filter(action="quality.checked").count() == 2


def test_a_repost_replaces_a_frame_damaged_in_transit(plant_client):
    unloading = named_layers_unloading(layers=3, per_layer=2)
    name = unloading.manifest["frames"][0]["file"]
    damaged = {**unloading.files, name: unloading.files[name][:-40]}
    assert unloading.post(plant_client, files=damaged).status_code == 201
    assert Frame.objects.get(source_name=name).rejection == "checksum"

    response = unloading.post(plant_client)

    assert response.json()["repaired"] == 1
    assert Frame.objects.get(source_name=name).rejection == ""


def test_a_repost_that_brings_nothing_new_changes_nothing(plant_client):
    unloading = named_layers_unloading()
    name = unloading.manifest["frames"][0]["file"]
    files = {n: d for n, d in unloading.files.items() if n != name}
    unloading.post(plant_client, files=files)

    response = unloading.post(plant_client, files=files)

    assert response.status_code == 200
    assert response.json()["repaired"] == 0
    assert not AuditEvent.objects.filter(action="unloading.repaired").exists()


class DiskFullStorage(FileSystemStorage):
    """Local disk that fills up after two files."""

    saves = 0

    def _save(self, name, content):
        DiskFullStorage.saves += 1
        if DiskFullStorage.saves > 2:
            raise OSError(28, "No space left on device")
        return super()._save(name, content)


def test_an_ingest_that_fails_halfway_leaves_no_file_and_no_row(settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": f"{__name__}.DiskFullStorage"},
    }
    DiskFullStorage.saves = 0
    unloading = named_layers_unloading()
    serializer = UnloadingManifestSerializer(data=unloading.manifest)
    serializer.is_valid(raise_exception=True)
    sources = {n: SimpleUploadedFile(n, d) for n, d in unloading.files.items()}

    with pytest.raises(OSError, match="No space left"):
        ingest_unloading(manifest=serializer.validated_data, sources=sources)

    assert DiskFullStorage.saves == 3
    assert stored_files(Path(settings.MEDIA_ROOT)) == []
    assert Railcar.objects.count() == 0


OUT_OF_RANGE = {
    "offset of almost a day": "2026-11-21T08:00:00+23:59",
    "year 9999 west of UTC": "9999-12-31T23:30:00-05:00",
    "year 1 east of UTC": "0001-01-01T00:30:00+05:00",
    "year 1": "0001-06-01T00:00:00Z",
}


@pytest.mark.parametrize("when", OUT_OF_RANGE.values(), ids=list(OUT_OF_RANGE))
def test_a_capture_time_out_of_range_is_a_400_with_a_field_error(when, plant_client):
    unloading = named_layers_unloading(layers=1, per_layer=1)
    unloading.manifest["frames"][0]["captured_at"] = when

    response = unloading.post(plant_client)

    assert response.status_code == 400
    assert "captured_at" in json.dumps(response.json()["frames"])
    assert Railcar.objects.count() == 0


def test_a_manifest_over_the_body_limit_is_a_json_400(plant_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    manifest = json.dumps({"railcar": "R" * 20_000})

    response = plant_client.post("/api/v1/unloadings/", {"manifest": manifest}, format="multipart")

    assert response.status_code == 400
    assert "exceeded" in response.json()["detail"]


def test_more_parts_than_allowed_is_a_json_400(plant_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    unloading = named_layers_unloading(layers=2, per_layer=2)

    response = unloading.post(plant_client)

    assert response.status_code == 400
    assert "files" in response.json()["detail"].lower()


def test_an_unknown_api_path_is_a_json_404(plant_client):
    response = plant_client.get("/api/v1/no-such-thing/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_the_schema_lists_every_answer_of_the_unloading_endpoint(plant_client):
    operation = plant_client.get("/api/v1/schema/?format=json").json()["paths"][
        "/api/v1/unloadings/"
    ]["post"]

    assert set(operation["responses"]) == {"200", "201", "400", "401", "403", "409", "415", "503"}
    body = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()  # present
