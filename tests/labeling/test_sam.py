"""The SAM model and the cache of frame embeddings, on a tiny randomly initialised SAM."""

import io
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, default_storage
from segment_anything import SamPredictor

from labeling import sam
from labeling.imagefiles import sha256_hex
from labeling.models import Frame, Railcar
from operations.synth import encode_jpeg, render_unloading

POINT = np.array([[900, 600]])
LABEL = np.array([1])
BOX = np.array([400, 330, 1500, 900])


@pytest.fixture
def tiny(settings) -> None:
    settings.SAM_MODEL_TYPE = "tiny"
    settings.SAM_CHECKPOINT = ""
    settings.SAM_DEVICE = "cpu"


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    unloading = render_unloading(
        rng=np.random.default_rng(7), layers=(1, 1), frames_per_layer=1, defect_share=0.0
    )
    return unloading.frame(0)


@pytest.fixture(scope="module")
def jpeg(image: np.ndarray) -> bytes:
    return encode_jpeg(image)


def make_frame(jpeg: bytes) -> Frame:
    sha = sha256_hex(jpeg)
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    railcar = Railcar.objects.create(
        real_id="RC-1",
        line="L1",
        camera="L1-TOP-1",
        fingerprint="f" * 64,
        unloading_started_at=at,
        unloading_ended_at=at,
        layer_source="boxes",
    )
    name = default_storage.save(f"frames/{sha[:2]}/{sha}.jpg", ContentFile(jpeg))
    return Frame.objects.create(
        railcar=railcar,
        index=0,
        source_name="x.jpg",
        captured_at=at,
        camera="c",
        declared_sha256=sha,
        content_sha256=sha,
        file=name,
        width=1920,
        height=1080,
    )


def predict(predictor: SamPredictor) -> tuple[np.ndarray, np.ndarray]:
    masks, scores, _ = predictor.predict(
        point_coords=POINT, point_labels=LABEL, box=BOX, multimask_output=True
    )
    return masks, scores


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def stored_path(sha: str) -> Path:
    return Path(default_storage.path(sam.embedding_storage_name(content_sha256=sha)))


def test_the_tiny_sam_embeds_a_full_hd_frame_with_the_real_geometry(tiny, image):
    embedding = sam.compute_embedding(image_rgb=image)

    assert embedding.features.shape == (1, 256, 64, 64)
    assert embedding.features.dtype == torch.float32
    assert embedding.original_size == (1080, 1920)
    assert embedding.input_size == (576, 1024)


def test_an_embedding_round_trips_through_the_storage_at_half_precision(tiny, image):
    embedding = sam.compute_embedding(image_rgb=image)
    sha = "ab" * 32

    name = sam.save_embedding(content_sha256=sha, embedding=embedding)
    loaded = sam.load_embedding(content_sha256=sha)

    assert name == f"sam-embeddings/{sam.model_key()}/ab/{sha}.pt"
    assert loaded is not None
    assert loaded.original_size == embedding.original_size
    assert loaded.input_size == embedding.input_size
    assert loaded.features.dtype == torch.float32
    torch.testing.assert_close(loaded.features, embedding.features, atol=2e-3, rtol=1e-3)
    # 256 x 64 x 64 at two bytes, plus a little framing.
    assert 2 * 2**20 <= stored_path(sha).stat().st_size < 2 * 2**20 + 8192


def test_nothing_stored_loads_as_none(tiny):
    assert sam.load_embedding(content_sha256="cd" * 32) is None


def test_a_predictor_from_the_embedding_gives_the_masks_of_set_image(tiny, image):
    direct = SamPredictor(sam.load_sam())
    direct.set_image(image)
    want_masks, want_scores = predict(direct)
    # A random decoder still draws shapes: neither empty nor everything, so IoU means something.
    assert all(0.01 < m.mean() < 0.99 for m in want_masks)

    embedding = sam.compute_embedding(image_rgb=image)
    masks, scores = predict(sam.predictor_from_embedding(embedding=embedding))
    np.testing.assert_array_equal(masks, want_masks)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)

    sam.save_embedding(content_sha256="ef" * 32, embedding=embedding)
    cached = sam.load_embedding(content_sha256="ef" * 32)
    masks, scores = predict(sam.predictor_from_embedding(embedding=cached))
    assert min(iou(a, b) for a, b in zip(masks, want_masks, strict=True)) > 0.995
    np.testing.assert_allclose(scores, want_scores, atol=2e-3)


def test_a_predictor_refuses_an_embedding_of_another_shape(tiny):
    embedding = sam.FrameEmbedding(
        features=torch.zeros(1, 64, 64, 64), original_size=(1080, 1920), input_size=(576, 1024)
    )
    with pytest.raises(ValueError, match="model expects"):
        sam.predictor_from_embedding(embedding=embedding)


@pytest.mark.django_db
def test_ensuring_an_embedding_twice_computes_it_once(tiny, jpeg):
    frame = make_frame(jpeg)

    assert sam.ensure_embedding(frame=frame) is True
    path = stored_path(frame.content_sha256)
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    assert sam.ensure_embedding(frame=frame) is False
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    loaded = sam.load_embedding(content_sha256=frame.content_sha256)
    assert loaded is not None
    assert loaded.original_size == (1080, 1920)


@pytest.mark.django_db
def test_ensuring_an_embedding_replaces_a_truncated_file(tiny, jpeg, caplog):
    frame = make_frame(jpeg)
    sam.ensure_embedding(frame=frame)
    path = stored_path(frame.content_sha256)
    path.write_bytes(path.read_bytes()[:1000])  # a worker killed mid-write

    with caplog.at_level(logging.ERROR, logger="labeling.sam"):
        assert sam.ensure_embedding(frame=frame) is True

    assert "is ignored" in caplog.text
    assert sam.load_embedding(content_sha256=frame.content_sha256) is not None
    assert os.listdir(path.parent) == [path.name]


def test_two_workers_saving_one_embedding_leave_one_file(tiny, image, monkeypatch):
    embedding = sam.compute_embedding(image_rgb=image)
    sha = "12" * 32
    sam.save_embedding(content_sha256=sha, embedding=embedding)
    real_delete = FileSystemStorage.delete
    calls = []

    def delete_raced(self, name):
        # The first delete "loses" to another worker that saves the file right after it.
        calls.append(name)
        if len(calls) > 1:
            real_delete(self, name)

    monkeypatch.setattr(FileSystemStorage, "delete", delete_raced)
    sam.save_embedding(content_sha256=sha, embedding=embedding)

    path = stored_path(sha)
    assert len(calls) == 2 and calls[1] != calls[0]  # the storage renamed ours; it was dropped
    assert os.listdir(path.parent) == [path.name]


def test_another_checkpoint_keys_embeddings_elsewhere(tiny, settings, tmp_path):
    sha = "34" * 32
    for seed in (0, 1):
        torch.save(sam.build_tiny_sam(seed=seed).state_dict(), tmp_path / f"tiny-{seed}.pth")

    settings.SAM_CHECKPOINT = str(tmp_path / "tiny-0.pth")
    first = sam.embedding_storage_name(content_sha256=sha)
    settings.SAM_CHECKPOINT = str(tmp_path / "tiny-1.pth")
    second = sam.embedding_storage_name(content_sha256=sha)

    assert first != second
    assert first.startswith("sam-embeddings/tiny-") and first.endswith(f"/34/{sha}.pt")
    assert (
        sam.load_sam()
        .image_encoder.neck[0]
        .weight.equal(sam.build_tiny_sam(seed=1).image_encoder.neck[0].weight)
    )


def test_an_embedding_of_another_model_is_not_used(tiny, settings, image, tmp_path):
    sha = "56" * 32
    sam.save_embedding(content_sha256=sha, embedding=sam.compute_embedding(image_rgb=image))
    name = sam.embedding_storage_name(content_sha256=sha)
    torch.save(sam.build_tiny_sam(seed=1).state_dict(), tmp_path / "tiny-1.pth")
    settings.SAM_CHECKPOINT = str(tmp_path / "tiny-1.pth")

    assert sam.embedding_storage_name(content_sha256=sha) != name
    assert sam.load_embedding(content_sha256=sha) is None


def test_sam_is_enabled_by_a_checkpoint_or_by_the_tiny_model(settings):
    settings.SAM_MODEL_TYPE = "vit_b"
    settings.SAM_CHECKPOINT = ""
    assert sam.sam_enabled() is False
    settings.SAM_CHECKPOINT = "/models/sam_vit_b.pth"
    assert sam.sam_enabled() is True
    settings.SAM_MODEL_TYPE = "tiny"
    settings.SAM_CHECKPOINT = ""
    assert sam.sam_enabled() is True


@pytest.mark.parametrize("model_type", ["tiny", "vit_b"])
def test_a_corrupt_checkpoint_fails_with_an_error_naming_the_file(settings, tmp_path, model_type):
    path = tmp_path / "sam.pth"
    path.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    settings.SAM_MODEL_TYPE = model_type
    settings.SAM_CHECKPOINT = str(path)

    with pytest.raises(sam.SamCheckpointError, match=str(path)):
        sam.load_sam()


def test_a_checkpoint_of_another_model_fails_with_an_error_naming_the_file(
    tiny, settings, tmp_path
):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3)}, path)
    settings.SAM_CHECKPOINT = str(path)

    with pytest.raises(sam.SamCheckpointError, match=f"{path} does not fit tiny"):
        sam.load_sam()


def test_a_missing_checkpoint_fails_with_an_error_naming_the_file(tiny, settings, tmp_path):
    settings.SAM_CHECKPOINT = str(tmp_path / "gone.pth")

    with pytest.raises(sam.SamCheckpointError, match="gone.pth"):
        sam.model_key()


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def test_a_pickle_that_would_run_code_is_refused_unrun(tiny, tmp_path, caplog):
    # Decided: load_embedding answers None (logged as an error), so a click recomputes and the
    # save replaces the file; it never raises into the view and never unpickles the payload.
    sha = "78" * 32
    marker = tmp_path / "pwned"
    out = io.BytesIO()
    payload = {"format": sam.EMBEDDING_FORMAT, "model_key": sam.model_key()}
    torch.save({**payload, "features": _RunsCode(marker)}, out)
    default_storage.save(
        sam.embedding_storage_name(content_sha256=sha), ContentFile(out.getvalue())
    )

    with caplog.at_level(logging.ERROR, logger="labeling.sam"):
        assert sam.load_embedding(content_sha256=sha) is None

    assert not marker.exists()
    assert "is ignored" in caplog.text


def test_storage_names_take_only_sha256_digests(tiny):
    with pytest.raises(ValueError, match="SHA-256"):
        sam.embedding_storage_name(content_sha256="../../etc/passwd")
