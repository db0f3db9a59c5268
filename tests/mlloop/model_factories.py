"""Railcars whose frames show their contamination, labeled and frozen, for training tests.

A frame is grey "metal" noise with a share of brown "contamination" pixels proportional to the
railcar's contamination, so even a randomly initialised backbone carries some of the signal.
The grade follows the contamination in bins, so it is learnable too.
"""

import hashlib
import io
from collections.abc import Sequence

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from PIL import Image

from labeling.models import Frame, Railcar
from mlloop import registry, runs
from mlloop.models import DatasetItem, DatasetVersion, ModelVersion, Split
from mlloop.training import Bag
from tests.labeling.factories import pool_railcar
from tests.mlloop.dataset_factories import label

GRADES = ("3A", "3A1", "3AH", "cast iron")


def grade_for(pct: float) -> str:
    return GRADES[min(int(pct // 2.5), 3)]


def signal_jpeg(pct: float, seed: int, width: int = 64, height: int = 48) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.repeat(rng.integers(90, 150, (height, width, 1)), 3, axis=2)
    dirt = rng.random((height, width)) < pct / 10
    pixels[dirt] = [125, 70, 25]
    out = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def scrap_railcar(
    pct: float, *, layers: int = 3, status: str = Railcar.Status.IN_POOL, raters: int = 3
) -> Railcar:
    """A railcar in the pool whose keyframes show `pct` % contamination (not labeled)."""
    railcar = pool_railcar(layers=layers, frames_per_layer=1, with_files=False, raters=raters)
    for frame in Frame.objects.filter(railcar=railcar):
        data = signal_jpeg(pct, seed=frame.pk)
        digest = hashlib.sha256(data).hexdigest()
        name = default_storage.save(f"frames/{digest[:2]}/{digest}.jpg", ContentFile(data))
        Frame.objects.filter(pk=frame.pk).update(file=name, content_sha256=digest)
    if status != Railcar.Status.IN_POOL:
        Railcar.objects.filter(pk=railcar.pk).update(status=status)
    railcar.refresh_from_db()
    return railcar


def frozen_dataset(items: Sequence[tuple[float, str]], *, layers: int = 3) -> DatasetVersion:
    """A dataset version of new labeled railcars, each (contamination, split), made directly so
    that the splits are exactly as asked."""
    number = (DatasetVersion.objects.order_by("-number").values_list("number", flat=True).first()
              or 0) + 1  # fmt: skip
    version = DatasetVersion.objects.create(
        number=number,
        created_at=timezone.now(),
        content_hash=hashlib.sha256(f"test {number}".encode()).hexdigest(),
        railcar_count=len(items),
    )
    for pct, split in items:
        railcar = scrap_railcar(pct, layers=layers, status=Railcar.Status.LABELED)
        final = label(railcar, f"{pct:.1f}", grade_for(pct))
        DatasetItem.objects.create(
            version=version,
            railcar=railcar,
            final_label=final,
            split=split,
            contamination_pct=final.contamination_pct,
            grade=final.grade,
            std_pct=final.std_pct,
        )
    return version


def spread(n: int, *, seed: int = 0) -> list[float]:
    """n contaminations between 0.5 and 9.5 %, shuffled."""
    values = np.linspace(0.5, 9.5, n)
    np.random.default_rng(seed).shuffle(values)
    return [round(float(v), 1) for v in values]


def splits(n_train: int, n_val: int, n_test: int, *, seed: int = 0) -> list[tuple[float, str]]:
    values = spread(n_train + n_val + n_test, seed=seed)
    kinds = [Split.TRAIN] * n_train + [Split.VAL] * n_val + [Split.TEST] * n_test
    return list(zip(values, kinds, strict=True))


def feature_bags(n: int, *, dim: int = 16, seed: int = 0, noise: float = 0.5) -> list[Bag]:
    """Database-free bags whose layer features carry the contamination along one direction
    (and the grade through it), with 2 to 6 layers each."""
    rng = np.random.default_rng(seed)
    direction = np.random.default_rng(99).normal(size=dim)
    bags = []
    for pct in rng.uniform(0.0, 10.0, n):
        layers = rng.integers(2, 7)
        features = pct * direction / 5 + rng.normal(scale=noise, size=(layers, dim))
        bags.append(Bag(features.astype(np.float32), float(pct), GRADES.index(grade_for(pct))))
    return bags


TINY = {"backbone": "test_resnet", "image_size": 32, "epochs": 4, "batch_size": 4, "ensemble": 3}


def train_run(dataset: DatasetVersion, **overrides: object) -> ModelVersion:
    """Register and train a tiny model version here (the worker's code path, in-process)."""
    run = registry.create_run(
        dataset_version=dataset, actor=None, overrides={**TINY, **overrides}, enqueue=False
    )
    return runs.train_model_version(run.pk)


def production_model(**overrides: object) -> ModelVersion:
    """A tiny model trained on a fresh dataset; the first to succeed, so in production."""
    run = train_run(frozen_dataset(splits(10, 4, 0)), **overrides)
    assert run.status == ModelVersion.Status.SUCCEEDED and run.is_production, run.log
    return run
