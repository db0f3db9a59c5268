"""Click-to-mask: COCO RLE, prompts, the GrabCut engine, and the SAM engine on a tiny SAM."""

import io
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.storage import default_storage
from PIL import Image
from segment_anything import SamPredictor

from labeling import masks, rle, sam
from labeling.masks import Prompts
from operations.synth import encode_jpeg, render_unloading
from operations.synth_pieces import SOIL
from tests.labeling.test_sam import make_frame

W, H = 1920, 1080
SAM_PROMPT = {"points": [[900, 600]], "labels": [1], "box": [400, 330, 1500, 900]}


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    # The caches are per process and keyed by content: each test starts from its own storage.
    masks.clear_caches()


@pytest.fixture
def tiny(settings) -> None:
    settings.SAM_MODEL_TYPE = "tiny"
    settings.SAM_CHECKPOINT = ""
    settings.SAM_DEVICE = "cpu"


@pytest.fixture
def no_sam(settings) -> None:
    settings.SAM_MODEL_TYPE = "vit_b"
    settings.SAM_CHECKPOINT = ""


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / max(1, np.logical_or(a, b).sum()))


# --- COCO RLE -------------------------------------------------------------------------------

# Produced by pycocotools 2.0 (`mask.encode(np.asfortranarray(m.astype(np.uint8)))`) in a
# throwaway virtualenv; pycocotools is not a dependency.
POSTER_BOX = np.zeros((1080, 1920), bool)
POSTER_BOX[300:700, 500:1500] = True
POSTER_BOX[800:802, 10:20] = True
PYCOCOTOOLS_OUTPUT = [
    (np.array([[0, 1], [1, 1]]), "13"),
    (np.array([[1, 0, 0], [1, 1, 0]]), "021O1"),
    (np.zeros((3, 4)), "<"),
    (np.ones((3, 4)), "0<"),
    (np.eye(4), "01400000"),
    (POSTER_BOX, "`Z;2fQ1" + "0" * 17 + "\\hi?^<VkU@" + "0" * 1997 + "dej="),
]


@pytest.mark.parametrize(("mask", "counts"), PYCOCOTOOLS_OUTPUT)
def test_rle_encodes_as_pycocotools_does(mask, counts):
    encoded = rle.encode(mask)

    assert encoded == {"size": list(mask.shape), "counts": counts}
    np.testing.assert_array_equal(rle.decode(encoded), mask.astype(bool))
    assert rle.area(encoded) == int(np.count_nonzero(mask))


@pytest.mark.parametrize("shape", [(1, 1), (1, 17), (23, 1), (7, 13), (64, 48), (1080, 1920)])
@pytest.mark.parametrize("fill", ["empty", "full", "sparse", "dense", "blocks"])
def test_rle_round_trips_masks_of_any_size(shape, fill):
    rng = np.random.default_rng(sum(shape))
    mask = {
        "empty": np.zeros(shape, bool),
        "full": np.ones(shape, bool),
        "sparse": rng.random(shape) < 0.02,
        "dense": rng.random(shape) < 0.6,
        "blocks": np.kron(
            rng.random((8, 8)) < 0.5, np.ones((-(-shape[0] // 8), -(-shape[1] // 8)))
        )[: shape[0], : shape[1]]
        > 0,
    }[fill]

    encoded = rle.encode(mask)

    assert encoded["size"] == list(shape)
    assert isinstance(encoded["counts"], str)
    np.testing.assert_array_equal(rle.decode(encoded), mask)
    np.testing.assert_array_equal(
        rle.decode({**encoded, "counts": encoded["counts"].encode()}), mask
    )
    assert rle.area(encoded) == int(mask.sum())
    np.testing.assert_array_equal(rle.string_to_counts(encoded["counts"]), rle.run_lengths(mask))


def test_rle_counts_that_need_many_chunks_and_negative_deltas_round_trip():
    counts = np.array([0, 5, 3, 2**31, 7, 1, 2**20, 40, 1], np.int64)
    assert np.array_equal(rle.string_to_counts(rle.counts_to_string(counts)), counts)


def test_rle_decodes_uncompressed_counts():
    # pycocotools' frPyObjects({"size": [3, 4], "counts": [1, 5, 2, 4]}) compresses to "152O".
    plain = rle.decode({"size": [3, 4], "counts": [1, 5, 2, 4]})
    np.testing.assert_array_equal(plain, rle.decode({"size": [3, 4], "counts": "152O"}))
    assert plain.T.ravel().tolist() == [0] + [1] * 5 + [0, 0] + [1] * 4


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"size": [3, 4], "counts": "13"}, "cover 4 pixels, not 3 x 4"),
        ({"size": [3, 4], "counts": "1~"}, "outside the COCO alphabet"),
        ({"size": [3, 4], "counts": "1P"}, "middle of a value"),
        ({"size": [3], "counts": "<"}, "size"),
        ({"size": [3, 4], "counts": [12, -1, 1]}, "negative"),
        ({"size": [3, 4], "counts": None}, "string or a list"),
    ],
)
def test_rle_refuses_malformed_input(bad, message):
    with pytest.raises(ValueError, match=message):
        rle.decode(bad)


def test_rle_agrees_with_pycocotools_when_it_is_installed():
    coco = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(3)
    for _ in range(200):
        shape = tuple(int(v) for v in rng.integers(1, 60, 2))
        mask = rng.random(shape) < rng.random()
        want = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
        assert rle.encode(mask)["counts"] == want["counts"].decode()


# --- prompts --------------------------------------------------------------------------------


def test_prompts_parse_a_box_and_a_point_and_give_them_back():
    prompts = Prompts.from_json(
        {"points": [[10, 20.5]], "labels": [1], "box": [0, 0, 1920, 1080]}, width=W, height=H
    )

    assert prompts == Prompts(points=[(10.0, 20.5)], labels=[1], box=(0.0, 0.0, 1920.0, 1080.0))
    assert Prompts.from_json(prompts.as_json(), width=W, height=H) == prompts


def test_prompts_may_be_a_box_alone_or_points_alone():
    assert Prompts.from_json({"box": [5, 5, 50, 60]}, width=W, height=H).points == []
    assert Prompts.from_json({"points": [[5, 5], [9, 9]], "labels": [1, 0]}, width=W, height=H)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"points": [[math.nan, 5]], "labels": [1]}, "point 0 x must be finite"),
        ({"points": [[5, math.inf]], "labels": [1]}, "point 0 y must be finite"),
        ({"box": [0, 0, math.inf, 9]}, "box\\[2\\] must be finite"),
        ({"points": [[1921, 5]], "labels": [1]}, "outside the 1920x1080 frame"),
        ({"points": [[-1, 5]], "labels": [1]}, "outside"),
        ({"box": [0, 0, 1920, 1081]}, "inside the 1920x1080 frame"),
        ({"box": [50, 10, 40, 20]}, "x0 < x1"),
        ({"box": [10, 10, 10, 20]}, "x0 < x1"),
        ({"box": [1, 2, 3]}, "box must be"),
        ({"points": [[5, 5]] * 33, "labels": [1] * 33}, "at most 32 points"),
        ({"points": [[5, 5]], "labels": [2]}, "label 0 must be 1"),
        ({"points": [[5, 5]], "labels": [True]}, "label 0 must be 1"),
        ({"points": [[5, 5]], "labels": []}, "1 points but 0 labels"),
        ({"points": [[5, "5"]], "labels": [1]}, "must be a number"),
        ({"points": [[5, 5, 5]], "labels": [1]}, "must be \\[x, y\\]"),
        ({}, "a box or at least one point on the object"),
        ({"points": [[5, 5]], "labels": [0]}, "a box or at least one point on the object"),
        ({"box": [0, 0, 5, 5], "mask": "x"}, "unknown prompt fields: mask"),
        ([[5, 5]], "must be an object"),
        ({"points": "5,5", "labels": [1]}, "must be lists"),
    ],
)
def test_prompts_refuse_what_cannot_be_a_prompt(data, message):
    with pytest.raises(ValueError, match=message):
        Prompts.from_json(data, width=W, height=H)


# --- GrabCut --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> tuple[bytes, np.ndarray]:
    """A clean synthetic frame and the class map of the scrap it shows."""
    unloading = render_unloading(
        rng=np.random.default_rng(1),
        layers=(1, 1),
        frames_per_layer=1,
        defect_share=0.0,
        contamination_pct=5.0,
    )
    return encode_jpeg(unloading.frame(0)), unloading.layer_classes[unloading.surface_layers[0] - 1]


def largest_inclusion(classes: np.ndarray) -> tuple[np.ndarray, list[float], list[float]]:
    """The largest inclusion blob, a box 4 px around it, and its innermost point."""
    _, parts, stats, _ = cv2.connectedComponentsWithStats((classes >= SOIL).astype(np.uint8))
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    blob = parts == k
    x, y, w, h, _ = stats[k]
    box = [max(0, x - 4), max(0, y - 4), min(W, x + w + 4), min(H, y + h + 4)]
    depth = cv2.distanceTransform(blob.astype(np.uint8), cv2.DIST_L2, 5)
    py, px = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return blob, [float(v) for v in box], [float(px), float(py)]


@pytest.mark.django_db
def test_grabcut_outlines_an_inclusion_from_a_box_and_one_point(no_sam, synthetic):
    jpeg, classes = synthetic
    frame = make_frame(jpeg)
    blob, box, point = largest_inclusion(classes)
    prompts = Prompts.from_json({"points": [point], "labels": [1], "box": box}, width=W, height=H)

    assert masks.engine().name == "grabcut"
    result = masks.predict_mask(frame=frame, prompts=prompts)

    assert result.engine == "grabcut"
    assert result.mask.shape == (H, W) and result.mask.dtype == bool
    # 0.86 when written; over the 5 largest blobs of 10 such frames, median 0.91, mean 0.84.
    assert iou(result.mask, blob) > 0.5
    assert result.area == int(result.mask.sum())
    np.testing.assert_array_equal(masks.mask_from_rle(result.rle), result.mask)
    assert result.as_json() == {
        "rle": result.rle,
        "engine": "grabcut",
        "area": result.area,
        "score": 1.0,
    }


@pytest.mark.django_db
def test_grabcut_keeps_the_object_under_a_click_without_a_box(no_sam, synthetic):
    jpeg, classes = synthetic
    frame = make_frame(jpeg)
    blob, _, (x, y) = largest_inclusion(classes)

    result = masks.predict_mask(frame=frame, prompts=Prompts(points=[(x, y)], labels=[1]))

    assert result.mask[int(y), int(x)]
    assert cv2.connectedComponents(result.mask.astype(np.uint8))[0] == 2  # background + one part
    assert iou(result.mask, blob) > 0.3


@pytest.mark.django_db
def test_grabcut_serves_a_box_over_the_whole_frame(no_sam, synthetic):
    frame = make_frame(synthetic[0])

    result = masks.predict_mask(frame=frame, prompts=Prompts(box=(0.0, 0.0, W, H)))

    assert result.mask.shape == (H, W)
    assert 0 < result.area < W * H


@pytest.mark.django_db
def test_an_engine_refuses_prompts_outside_the_stored_image(no_sam, synthetic):
    frame = make_frame(synthetic[0])

    with pytest.raises(ValueError, match="outside the 1920x1080 frame"):
        masks.predict_mask(frame=frame, prompts=Prompts(points=[(2500.0, 10.0)], labels=[1]))


@pytest.mark.django_db
def test_a_frame_without_a_stored_image_cannot_be_segmented(no_sam, synthetic):
    frame = make_frame(synthetic[0])
    frame.content_sha256 = ""

    with pytest.raises(ValueError, match="no stored image"):
        masks.predict_mask(frame=frame, prompts=Prompts(box=(0.0, 0.0, 10.0, 10.0)))


# --- SAM ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sam_jpeg() -> bytes:
    unloading = render_unloading(
        rng=np.random.default_rng(7), layers=(1, 1), frames_per_layer=1, defect_share=0.0
    )
    return encode_jpeg(unloading.frame(0))


def stored_embedding(sha: str) -> Path:
    return Path(default_storage.path(sam.embedding_storage_name(content_sha256=sha)))


def test_the_engine_is_sam_when_a_model_is_configured_and_grabcut_otherwise(settings):
    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_b", ""
    assert isinstance(masks.engine(), masks.GrabCutEngine)
    settings.SAM_MODEL_TYPE = "tiny"
    assert isinstance(masks.engine(), masks.SamEngine)


@pytest.mark.django_db
def test_sam_gives_the_mask_of_set_image_and_predict_from_the_cached_embedding(tiny, sam_jpeg):
    frame = make_frame(sam_jpeg)
    prompts = Prompts.from_json(SAM_PROMPT, width=W, height=H)
    direct = SamPredictor(sam.load_sam())
    direct.set_image(np.asarray(Image.open(io.BytesIO(sam_jpeg)).convert("RGB")))
    want, scores, _ = direct.predict(
        point_coords=np.array([[900, 600]]),
        point_labels=np.array([1]),
        box=np.array([400, 330, 1500, 900]),
        multimask_output=True,
    )
    best = int(np.argmax(scores))

    result = masks.predict_mask(frame=frame, prompts=prompts)

    assert result.engine == f"sam:{sam.model_key()}"
    assert 0.01 < result.mask.mean() < 0.99  # a random decoder still draws a shape
    # The embedding is stored at half precision: a pixel or two on the edges may differ.
    assert iou(result.mask, want[best]) > 0.995
    assert result.score == pytest.approx(float(scores[best]), abs=2e-3)
    assert result.area == int(result.mask.sum())
    np.testing.assert_array_equal(masks.mask_from_rle(result.rle), result.mask)


@pytest.mark.django_db
def test_sam_embeds_a_frame_on_its_first_click_and_never_again(tiny, sam_jpeg):
    frame = make_frame(sam_jpeg)
    prompts = Prompts.from_json(SAM_PROMPT, width=W, height=H)
    path = stored_embedding(frame.content_sha256)
    assert not path.exists()

    first = masks.predict_mask(frame=frame, prompts=prompts)
    stat = path.stat()
    second = masks.predict_mask(frame=frame, prompts=prompts)

    assert (path.stat().st_ino, path.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)
    np.testing.assert_array_equal(second.mask, first.mask)
    # The loaded embedding is kept in the process: with the file gone, a click neither reads
    # the storage nor runs the encoder (which would store the file again).
    path.unlink()
    third = masks.predict_mask(frame=frame, prompts=Prompts(points=[(300.0, 200.0)], labels=[1]))
    assert not path.exists()
    assert third.mask.shape == (H, W)


@pytest.mark.django_db
def test_sam_uses_the_embedding_the_pipeline_precomputed(tiny, sam_jpeg):
    frame = make_frame(sam_jpeg)
    assert sam.ensure_embedding(frame=frame) is True
    path = stored_embedding(frame.content_sha256)
    before = (path.stat().st_ino, path.stat().st_mtime_ns)

    masks.predict_mask(frame=frame, prompts=Prompts(box=(400.0, 330.0, 1500.0, 900.0)))

    assert (path.stat().st_ino, path.stat().st_mtime_ns) == before


@pytest.mark.django_db
def test_sam_refuses_prompts_outside_the_embedded_frame(tiny, sam_jpeg):
    frame = make_frame(sam_jpeg)

    with pytest.raises(ValueError, match="inside the 1920x1080 frame"):
        masks.predict_mask(frame=frame, prompts=Prompts(box=(0.0, 0.0, 1921.0, 100.0)))
