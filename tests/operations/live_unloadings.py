"""Unloadings posted layer by layer through the API, for tests and the live benchmark."""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import jpeg_bytes

START = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
API = "/api/v1/unloadings"


def token_client(user: User) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@dataclass
class Layer:
    """One layer's frame entries (as in a manifest) and their bytes."""

    entries: list[dict[str, Any]]
    files: dict[str, bytes]

    def body(self, *, files: dict[str, bytes] | None = None) -> dict[str, Any]:
        from django.core.files.uploadedfile import SimpleUploadedFile

        parts: dict[str, Any] = {"manifest": json.dumps({"frames": self.entries})}
        for name, data in (self.files if files is None else files).items():
            parts[name] = SimpleUploadedFile(name, data, content_type="image/jpeg")
        return parts


@dataclass
class LiveUnloading:
    """A railcar unloading on a line, its layers posted one at a time."""

    railcar: str = "RC-61000001"
    line: str = "L2"
    per_layer: int = 3
    # Bytes of the n-th frame of the unloading (default: noise JPEGs).
    frame_bytes: Callable[[int], bytes] = field(default=lambda n: jpeg_bytes(seed=n))
    uid: str = ""

    @property
    def camera(self) -> str:
        return f"{self.line}-TOP-1"

    def layer(self, index: int, *, frames: int | None = None) -> Layer:
        count = frames or self.per_layer
        entries, files = [], {}
        for k in range(count):
            n = (index - 1) * self.per_layer + k
            name = f"{self.railcar}_{n:04d}.jpg"
            data = self.frame_bytes(n)
            files[name] = data
            entries.append(
                {
                    "file": name,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "captured_at": (START + timedelta(seconds=n)).isoformat(),
                    "layer": index,
                }
            )
        return Layer(entries=entries, files=files)

    def open(self, client: APIClient) -> Any:
        response = client.post(
            f"{API}/open/",
            {
                "railcar": self.railcar,
                "line": self.line,
                "camera": self.camera,
                "started_at": START.isoformat(),
            },
            format="json",
        )
        if response.status_code in (200, 201):
            self.uid = response.json()["railcar"]
        return response

    def append(self, client: APIClient, layer: Layer, **kwargs: Any) -> Any:
        return client.post(f"{API}/{self.uid}/frames/", layer.body(**kwargs), format="multipart")

    def close(self, client: APIClient) -> Any:
        return client.post(f"{API}/{self.uid}/close/")
