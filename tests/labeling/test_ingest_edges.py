"""Ingest at its edges: other storage backends, broken request bodies, the schema."""

import pytest
from django.core.files.storage import default_storage

from labeling.models import Frame
from tests.labeling.unloadings import named_layers_unloading

pytestmark = pytest.mark.django_db


def test_frames_go_through_whatever_storage_the_settings_name(plant_client, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    assert default_storage.__class__.__name__ == "InMemoryStorage"

    response = named_layers_unloading().post(plant_client)

    assert response.status_code == 201
    frame = Frame.objects.first()
    assert default_storage.exists(frame.file.name)
    assert frame.file.read()[:2] == b"\xff\xd8"


def test_a_truncated_multipart_body_gets_a_400(plant_client):
    body = b'--BOUNDARY\r\nContent-Disposition: form-data; name="manifest"\r\n\r\n{"rail'

    response = plant_client.generic(
        "POST",
        "/api/v1/unloadings/",
        body,
        content_type="multipart/form-data; boundary=BOUNDARY",
    )

    assert response.status_code == 400


def test_a_json_body_instead_of_multipart_gets_a_415(plant_client):
    response = plant_client.post(
        "/api/v1/unloadings/", named_layers_unloading().manifest, format="json"
    )

    assert response.status_code == 415


def test_the_openapi_schema_describes_the_unloading_endpoint(plant_client):
    response = plant_client.get("/api/v1/schema/?format=json")

    assert response.status_code == 200
    operation = response.json()["paths"]["/api/v1/unloadings/"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"200", "201", "400", "409"} <= set(operation["responses"])
