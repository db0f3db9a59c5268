"""The synthetic railcar generator: format, truth, layers, defects, determinism.

No database: these are plain functions on tiny frames.
"""

import hashlib
import json
import re
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from operations.synth import (
    GRADES,
    LABELS_FILE,
    SyntheticUnloading,
    railcar_rng,
    render_unloading,
    write_unloadings,
)
from operations.synth_scene import DEFECT_KINDS

W, H = 320, 180
MANIFEST = "unloading.json"
IOU_THRESHOLD = 0.05
MAX_GAP = 1


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    write_unloadings(
        out_dir=out,
        railcars=3,
        seed=11,
        width=W,
        height=H,
        layers=(2, 4),
        frames_per_layer=3,
        defect_share=0.2,
    )
    return out


def folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def labels(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / LABELS_FILE).read_text().splitlines()]


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def iou(a: list[int] | None, b: list[int] | None) -> float:
    if a is None or b is None:
        return 0.0
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def runs_above(trace: list[float], threshold: float, max_gap: int) -> list[list[int]]:
    """Runs of frames at or above the threshold; a dip of up to max_gap frames is bridged."""
    runs: list[list[int]] = []
    gap = max_gap + 1
    for i, value in enumerate(trace):
        if value >= threshold:
            if runs and gap <= max_gap:
                runs[-1].append(i)
            else:
                runs.append([i])
            gap = 0
        else:
            gap += 1
    return runs


def contamination(classes: np.ndarray) -> float:
    """Inclusion pixels (classes 2-5) over scrap pixels (classes 1-5), in percent."""
    scrap = np.count_nonzero((classes >= 1) & (classes <= 5))
    return 100.0 * np.count_nonzero((classes >= 2) & (classes <= 5)) / scrap


def small(seed: int, **kwargs) -> SyntheticUnloading:
    options = {"width": W, "height": H, "layers": (3, 3), "frames_per_layer": 3} | kwargs
    return render_unloading(rng=np.random.default_rng(seed), **options)


def test_it_writes_one_folder_per_railcar_and_one_labels_file(written: Path) -> None:
    assert [p.name for p in folders(written)] == [
        "unloading-0001",
        "unloading-0002",
        "unloading-0003",
    ]
    assert sorted(p.name for p in written.iterdir() if p.is_file()) == [LABELS_FILE]
    assert len(labels(written)) == 3


def test_manifests_follow_the_unloading_format(written: Path) -> None:
    for folder in folders(written):
        data = manifest(folder)
        assert set(data) == {"railcar", "line", "camera", "frames"}
        assert re.fullmatch(r"RC-\d{8}", data["railcar"])
        assert 1 <= len(data["line"]) <= 32 and 1 <= len(data["camera"]) <= 64
        assert data["frames"]
        times = []
        for frame in data["frames"]:
            assert set(frame) == {"file", "sha256", "captured_at", "magnet_box", "railcar_box"}
            assert re.fullmatch(r"\d{6}\.jpg", frame["file"])
            content = (folder / frame["file"]).read_bytes()
            assert frame["sha256"] == hashlib.sha256(content).hexdigest()
            image = cv2.imdecode(np.frombuffer(content, np.uint8), cv2.IMREAD_COLOR)
            assert image.shape == (H, W, 3)
            assert frame["captured_at"].endswith("Z")
            times.append(datetime.fromisoformat(frame["captured_at"]))
            for key in ("magnet_box", "railcar_box"):
                box = frame[key]
                assert box is None or (
                    len(box) == 4
                    and all(isinstance(v, int) for v in box)
                    and 0 <= box[0] < box[2] <= W
                    and 0 <= box[1] < box[3] <= H
                )
            assert frame["railcar_box"] is not None
        assert times == sorted(times)
        assert len({f["file"] for f in data["frames"]}) == len(data["frames"])
        steps = np.diff([t.timestamp() for t in times])
        assert np.all((steps > 0.4) & (steps < 0.6)), "about two frames per second"
        listed = {f["file"] for f in data["frames"]} | {MANIFEST}
        assert {p.name for p in folder.iterdir()} == listed


def test_labels_never_reach_an_unloading_folder(written: Path) -> None:
    for record, folder in zip(labels(written), folders(written), strict=True):
        assert folder.name != record["railcar"]
        assert not list(folder.rglob(LABELS_FILE))
        assert f'"{record["grade"]}"' not in (folder / MANIFEST).read_text()
        for path in folder.iterdir():
            assert record["railcar"] not in path.name
            content = path.read_bytes()
            for leak in (b"grade", b"contamination", b"labels", b"defect", b"layer"):
                assert leak not in content, (path, leak)


def test_the_labels_file_describes_each_unloading(written: Path) -> None:
    for record, folder in zip(labels(written), folders(written), strict=True):
        data = manifest(folder)
        assert record["folder"] == folder.name
        assert record["railcar"] == data["railcar"]
        assert record["grade"] in GRADES
        assert record["layers"] == len(record["layer_contamination_pct"])
        assert record["contamination_pct_exact"] == pytest.approx(
            np.mean(record["layer_contamination_pct"])
        )
        assert record["contamination_pct"] == round(record["contamination_pct_exact"], 1)
        assert [f["file"] for f in record["frames"]] == [f["file"] for f in data["frames"]]
        assert {f["defect"] for f in record["frames"]} <= {None, *DEFECT_KINDS}


def test_the_iou_trace_splits_into_one_run_per_layer(written: Path) -> None:
    for record, folder in zip(labels(written), folders(written), strict=True):
        frames = manifest(folder)["frames"]
        trace = [iou(f["magnet_box"], f["railcar_box"]) for f in frames]
        runs = runs_above(trace, IOU_THRESHOLD, MAX_GAP)
        assert len(runs) == record["layers"]
        grabs = [f["grab"] for f in record["frames"]]
        assert [[grabs[i] for i in run] for run in runs] == [
            [k + 1] * len(run) for k, run in enumerate(runs)
        ]
        assert all(0.1 < max(trace[i] for i in run) < 0.35 for run in runs)
        assert all(value == 0.0 for value, grab in zip(trace, grabs, strict=True) if grab is None)


@pytest.mark.parametrize("frames_per_layer", [1, 2, 5])
def test_any_number_of_frames_per_layer_keeps_the_layers_apart(frames_per_layer: int) -> None:
    for seed in range(4):
        unloading = render_unloading(
            rng=railcar_rng(seed=seed, index=0),
            width=W,
            height=H,
            layers=(1, 6),
            frames_per_layer=frames_per_layer,
        )
        boxes = zip(unloading.magnet_boxes, unloading.railcar_boxes, strict=True)
        trace = [iou(m, r) for m, r in boxes]
        runs = runs_above(trace, IOU_THRESHOLD, 2)
        assert len(runs) == len(unloading.layer_contamination_pct)
        assert all(len(run) == frames_per_layer for run in runs)


def test_named_layers_name_a_layer_for_every_frame_and_give_no_boxes(tmp_path: Path) -> None:
    write_unloadings(
        out_dir=tmp_path,
        railcars=1,
        seed=5,
        width=W,
        height=H,
        layers=(3, 3),
        frames_per_layer=2,
        named_layers=True,
    )
    frames = manifest(tmp_path / "unloading-0001")["frames"]
    assert all(set(f) == {"file", "sha256", "captured_at", "layer"} for f in frames)
    layers = [f["layer"] for f in frames]
    assert layers == sorted(layers)
    assert set(layers) == {1, 2, 3}


def test_the_label_matches_the_pixels() -> None:
    unloading = small(1, contamination_pct=4.0)
    for classes, label in zip(
        unloading.layer_classes, unloading.layer_contamination_pct, strict=True
    ):
        assert classes.shape == (H, W)
        assert contamination(classes) == pytest.approx(label)
    assert unloading.contamination_pct == pytest.approx(
        np.mean([contamination(c) for c in unloading.layer_classes])
    )
    assert unloading.contamination_pct == pytest.approx(4.0, abs=0.6)


def test_a_clean_railcar_has_no_inclusion_pixels() -> None:
    unloading = small(2, contamination_pct=0.0)
    assert unloading.contamination_pct == 0.0
    assert all(np.count_nonzero(c >= 2) == 0 for c in unloading.layer_classes)


def test_more_requested_contamination_draws_more_inclusion_pixels() -> None:
    low, high = small(3, contamination_pct=1.0), small(3, contamination_pct=8.0)
    assert sum(np.count_nonzero(c >= 2) for c in high.layer_classes) > 3 * sum(
        np.count_nonzero(c >= 2) for c in low.layer_classes
    )
    assert high.contamination_pct > low.contamination_pct + 5


def test_inclusion_pixels_look_different_from_the_metal_around_them() -> None:
    unloading = small(4, contamination_pct=10.0, layers=(1, 1))
    frame = unloading.frame_with(0, defect=None).astype(float)
    classes = unloading.layer_classes[0]
    magnet = unloading.magnet_boxes[0]
    visible = np.ones_like(classes, bool)
    visible[: magnet[3], :] = False  # the magnet and its boom are above the railcar's interior
    rubber = frame[(classes == 4) & visible].mean(axis=0) if np.any(classes == 4) else None
    if rubber is not None:
        assert rubber.mean() < frame[(classes == 1) & visible].mean()
    assert frame[(classes >= 2) & visible].size > 0


@pytest.mark.parametrize(("share", "expected"), [(0.0, 0.0), (1.0, 1.0), (0.3, 0.3)])
def test_the_defect_share_is_honoured(share: float, expected: float) -> None:
    unloading = small(5, defect_share=share)
    defects = [d for d in unloading.defects if d is not None]
    assert len(defects) / len(unloading) == pytest.approx(expected, abs=0.5 / len(unloading))
    assert set(defects) <= set(DEFECT_KINDS)


def laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_defective_frames_are_measurably_degraded() -> None:
    unloading = small(6, defect_share=0.0)
    i = next(k for k, grab in enumerate(unloading.grabs) if grab == 1)
    clean = unloading.frame_with(i, defect=None)
    gray = cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY).astype(float)
    x0, y0, x1, y1 = unloading.layout.interior(2)

    def degraded(kind: str) -> np.ndarray:
        return unloading.frame_with(i, defect=kind)

    assert laplacian_variance(degraded("blur")) < laplacian_variance(clean) / 4
    dark = cv2.cvtColor(degraded("under_exposure"), cv2.COLOR_RGB2GRAY).astype(float)
    assert dark.mean() < 0.4 * gray.mean()
    bright = cv2.cvtColor(degraded("over_exposure"), cv2.COLOR_RGB2GRAY)
    assert np.mean(bright >= 250) > np.mean(gray >= 250) + 0.3
    hazy = cv2.cvtColor(degraded("dust_haze"), cv2.COLOR_RGB2GRAY).astype(float)
    assert hazy.std() < 0.6 * gray.std()
    empty = degraded("empty")
    assert laplacian_variance(empty[y0:y1, x0:x1]) < laplacian_variance(clean[y0:y1, x0:x1]) / 3


def test_the_planned_defect_is_the_one_drawn() -> None:
    unloading = small(7, defect_share=1.0)
    for i in range(3):
        assert np.array_equal(
            unloading.frame(i), unloading.frame_with(i, defect=unloading.defects[i])
        )


def test_the_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    for name in ("a", "b"):
        write_unloadings(
            out_dir=tmp_path / name,
            railcars=2,
            seed=42,
            width=W,
            height=H,
            layers=(2, 2),
            frames_per_layer=2,
        )

    def contents(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    assert contents(tmp_path / "a") == contents(tmp_path / "b")


def test_more_railcars_extend_a_run_without_changing_its_first_railcars(tmp_path: Path) -> None:
    options = {"seed": 8, "width": W, "height": H, "layers": (2, 2), "frames_per_layer": 2}
    write_unloadings(out_dir=tmp_path / "one", railcars=1, **options)
    write_unloadings(out_dir=tmp_path / "two", railcars=2, **options)
    for path in (tmp_path / "one" / "unloading-0001").iterdir():
        assert path.read_bytes() == (tmp_path / "two" / "unloading-0001" / path.name).read_bytes()
    assert labels(tmp_path / "one")[0] == labels(tmp_path / "two")[0]
    assert labels(tmp_path / "two")[1]["railcar"] != labels(tmp_path / "two")[0]["railcar"]


def test_grades_and_contamination_are_spread_like_a_plant_intake() -> None:
    railcars = [
        render_unloading(
            rng=railcar_rng(seed=9, index=i),
            width=160,
            height=90,
            layers=(1, 1),
            frames_per_layer=1,
        )
        for i in range(40)
    ]
    assert {r.grade for r in railcars} == set(GRADES)
    values = [r.contamination_pct for r in railcars]
    assert all(0.0 <= v <= 16.0 for v in values)
    assert 0.5 <= float(np.median(values)) <= 5.0


def test_the_command_writes_unloadings_and_labels(tmp_path: Path) -> None:
    pytest.importorskip("pytest_django")
    from django.conf import settings

    if not settings.configured:
        pytest.skip("Django settings are not configured")
    from django.core.management import call_command

    call_command(
        "synth",
        str(tmp_path),
        "--railcars",
        "2",
        "--seed",
        "3",
        "--width",
        "192",
        "--height",
        "108",
        "--layers",
        "2",
        "--frames-per-layer",
        "2",
        "--defect-share",
        "0",
    )
    assert [p.name for p in folders(tmp_path)] == ["unloading-0001", "unloading-0002"]
    assert all(r["layers"] == 2 for r in labels(tmp_path))
    assert all(f["defect"] is None for r in labels(tmp_path) for f in r["frames"])
