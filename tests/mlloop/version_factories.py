"""Model versions and dataset versions made by hand, with metrics as training computes them, for
the model registry's pages."""

import hashlib

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone

from mlloop.models import DatasetVersion, ModelVersion
from mlloop.training import metrics as compute_metrics

GRADES = ["3A", "3A1", "3AH", "cast iron"]


def dataset(number: int = 1) -> DatasetVersion:
    return DatasetVersion.objects.create(
        number=number,
        created_at=timezone.now(),
        content_hash=hashlib.sha256(str(number).encode()).hexdigest(),
        railcar_count=40,
    )


def run_metrics(seed: int) -> dict:
    """Metrics as training computes them, over a made-up test split (40 railcars)."""
    rng = np.random.default_rng(seed)
    truth = rng.gamma(1.6, 1.7, 40)
    grades = rng.integers(0, 4, 40)
    guessed = np.where(rng.random(40) < 0.6, grades, rng.integers(0, 4, 40))
    return compute_metrics(
        truth, truth + rng.normal(0, 0.5 + seed * 0.1, 40), grades, guessed, GRADES
    )


def model_version(
    number: int, *, status: str = ModelVersion.Status.SUCCEEDED, data: DatasetVersion | None = None
) -> ModelVersion:
    done = status == ModelVersion.Status.SUCCEEDED
    version = ModelVersion.objects.create(
        number=number,
        dataset_version=data or DatasetVersion.objects.first() or dataset(),
        status=status,
        settings={"backbone": "test_convnext", "epochs": 3, "lam": 0.5},
        metrics={"val": run_metrics(number), "test": run_metrics(100 + number)} if done else {},
        created_at=timezone.now(),
        finished_at=timezone.now() if done else None,
        progress=1.0 if done else 0.0,
        log="".join(f"line {i}\n" for i in range(3)),
    )
    if done:  # promotion needs a stored artifact
        blob = f"weights of v{number}".encode()
        version.artifact.save(f"v{number}.pt", ContentFile(blob), save=False)
        version.artifact_sha256 = hashlib.sha256(blob).hexdigest()
        version.save()
    return version
