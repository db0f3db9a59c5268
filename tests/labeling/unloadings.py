"""Build unloadings (manifest + files) for tests, in memory or on disk."""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from tests.conftest import jpeg_bytes


@dataclass
class Unloading:
    manifest: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)

    def frame(self, name: str) -> dict[str, Any]:
        return next(f for f in self.manifest["frames"] if f["file"] == name)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "unloading.json").write_text(json.dumps(self.manifest))
        for name, data in self.files.items():
            (folder / name).write_bytes(data)
        return folder

    def post(self, client: APIClient, *, files: dict[str, bytes] | None = None) -> Any:
        from django.core.files.uploadedfile import SimpleUploadedFile

        body: dict[str, Any] = {"manifest": json.dumps(self.manifest)}
        for name, data in (self.files if files is None else files).items():
            body[name] = SimpleUploadedFile(name, data, content_type="image/jpeg")
        return client.post("/api/v1/unloadings/", body, format="multipart")


def named_layers_unloading(
    *, railcar: str = "RC-58231774", layers: int = 2, per_layer: int = 3, seed: int = 0
) -> Unloading:
    frames, files = [], {}
    for i in range(layers * per_layer):
        name = f"{railcar}_2026-11-21_{i:04d}.jpg"  # a plant-style name that leaks metadata
        data = jpeg_bytes(seed=seed * 1000 + i)
        files[name] = data
        frames.append(
            {
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "captured_at": f"2026-11-21T08:{i // 60:02d}:{i % 60:02d}Z",
                "layer": i // per_layer + 1,
            }
        )
    manifest = {"railcar": railcar, "line": "L2", "camera": "L2-TOP-1", "frames": frames}
    return Unloading(manifest=manifest, files=files)


def boxed_unloading(ious_shape: list[float], *, railcar: str = "RC-7") -> Unloading:
    """Frames whose magnet box overlaps a 100x100 railcar box by the given fractions of width:
    overlap 0 gives IoU 0; a 40x100 magnet fully inside gives IoU 0.4."""
    frames, files = [], {}
    railcar_box = [0, 0, 100, 100]
    for i, inside in enumerate(ious_shape):
        name = f"f{i:03d}.jpg"
        data = jpeg_bytes(seed=500 + i)
        files[name] = data
        # A 40-wide magnet whose left edge sits at 100 - 40*inside: `inside` of it overlaps.
        left = 100 - 40 * inside
        frames.append(
            {
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "captured_at": f"2026-11-21T09:00:{i:02d}Z",
                "magnet_box": [left, 0, left + 40, 100],
                "railcar_box": railcar_box,
            }
        )
    manifest = {"railcar": railcar, "line": "L1", "camera": "L1-TOP", "frames": frames}
    return Unloading(manifest=manifest, files=files)


def run_checks(*, blur_check: bool = False) -> None:
    """Run the quality checks on every ingested railcar: they settle which frames are eligible
    and pick each layer's keyframe. These frames are smooth noise that the blur check fails, so
    it is off unless asked for."""
    from labeling import pipeline
    from labeling.models import Railcar
    from scrapannot.policy import set_policy

    if not blur_check:
        set_policy(key="quality.min_sharpness", value=0.0, actor=None)
    for railcar_id in Railcar.objects.values_list("pk", flat=True):
        pipeline.check_railcar(railcar_id=railcar_id)
