"""Synthetic railcar unloadings with known truth, for tests, benchmarks and demos.

`write_unloadings` writes folders in the unloading format (docs/unloading-format.md) that
`manage.py ingest` reads, and the true labels to one separate `labels.jsonl` beside them.

Truth. Each layer's scrap surface is drawn once with a class per pixel (synth_scrap). A layer's
contamination is inclusion pixels / scrap pixels (metal or inclusion) of that surface, counted
before the magnet, the boom or any frame defect is drawn over it. The railcar's contamination is
the plain mean of its layers' values (each magnet grab counts once, as an inspector weighs them);
it is not pixel-weighted, since deeper layers show less scrap between the inner walls.

Sequence. Two frames with the magnet away, then for each of the L grabs `frames_per_layer` frames
in which the magnet enters, hovers (the IoU peak) and lifts, and three frames with the magnet
away between grabs (two after the last). Away frames have IoU(magnet, railcar) exactly 0 and grab
frames at least `MIN_GRAB_IOU`, so at LAYER_IOU_THRESHOLD 0.05 the IoU trace splits into exactly
L runs for any LAYER_MAX_GAP below 3. A frame shows the surface its next grab will take; after
the last grab it shows the last layer. With `named_layers` the manifest carries `layer` (that
same surface layer, so frames between grabs belong to the next grab) and no boxes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np

from labeling.layers import box_iou
from labeling.unloading_folders import MANIFEST_NAME
from operations import synth_scene as scene
from operations.synth_scrap import GRADES, inclusion_share, render_layer

LABELS_FILE = "labels.jsonl"
MIN_GRAB_IOU = 0.06
_AWAY_BEFORE, _AWAY_BETWEEN, _AWAY_AFTER = 2, 3, 2
_FRAME_STEP_S = 0.5  # about 2 fps

Box = scene.Box


@dataclass(frozen=True)
class TruthRecord:
    """One line of labels.jsonl: what a perfect annotator would say about one unloading."""

    folder: str
    railcar: str
    grade: str
    contamination_pct_exact: float
    layer_contamination_pct: tuple[float, ...]
    files: tuple[str, ...]
    frame_defects: tuple[str | None, ...]  # one of scene.DEFECT_KINDS, or None
    frame_grabs: tuple[int | None, ...]  # 1-based grab a frame belongs to, None between grabs

    def as_json(self) -> dict:
        return {
            "folder": self.folder,
            "railcar": self.railcar,
            "grade": self.grade,
            "contamination_pct": round(self.contamination_pct_exact, 1),
            "contamination_pct_exact": self.contamination_pct_exact,
            "layer_contamination_pct": list(self.layer_contamination_pct),
            "layers": len(self.layer_contamination_pct),
            "frames": [
                {"file": f, "defect": d, "grab": g}
                for f, d, g in zip(self.files, self.frame_defects, self.frame_grabs, strict=True)
            ],
        }


@dataclass
class SyntheticUnloading:
    """One rendered unloading: per-frame metadata, per-layer truth, and frames drawn on demand."""

    railcar: str
    line: str
    camera: str
    grade: str
    layout: scene.Layout
    captured_at: list[datetime]
    magnet_boxes: list[Box | None]
    railcar_boxes: list[Box]
    grabs: list[int | None]
    surface_layers: list[int]  # 1-based layer whose scrap a frame shows
    defects: list[str | None]
    layer_classes: list[np.ndarray]  # frame-sized class maps, see synth_scrap (FLOOR ... CONCRETE)
    layer_contamination_pct: list[float]
    _bases: list[np.ndarray] = field(repr=False)
    _empty: np.ndarray = field(repr=False)
    _magnet: list[tuple[tuple[float, float], float]] = field(repr=False)
    _pivot: tuple[float, float] = field(repr=False)
    _strength: list[float] = field(repr=False)

    @property
    def contamination_pct(self) -> float:
        return float(np.mean(self.layer_contamination_pct))

    def __len__(self) -> int:
        return len(self.captured_at)

    def frame(self, i: int) -> np.ndarray:
        """Frame `i` as RGB uint8, (height, width, 3), with its planned defect if any."""
        return self.frame_with(i, defect=self.defects[i])

    def frame_with(self, i: int, *, defect: str | None) -> np.ndarray:
        """Frame `i` with `defect` (one of synth_scene.DEFECT_KINDS) instead, or clean if None."""
        img = (self._empty if defect == "empty" else self._bases[self.surface_layers[i] - 1]).copy()
        centre, radius = self._magnet[i]
        scene.draw_magnet(img, centre=centre, radius=radius, pivot=self._pivot)
        if defect is not None:
            img = scene.apply_defect(img, kind=defect, strength=self._strength[i])
        return img

    def frames(self) -> list[np.ndarray]:
        return [self.frame(i) for i in range(len(self))]


def sample_contamination_pct(rng: np.random.Generator) -> float:
    """Mostly 0.5-5 %, a long tail up to 15 %, and now and then a clean railcar."""
    if rng.random() < 0.04:
        return 0.0
    return float(min(15.0, rng.gamma(1.6, 1.7)))


def render_unloading(
    *,
    rng: np.random.Generator,
    width: int = 1920,
    height: int = 1080,
    layers: tuple[int, int] = (4, 6),
    frames_per_layer: int = 5,
    defect_share: float = 0.1,
    grade: str | None = None,
    contamination_pct: float | None = None,
) -> SyntheticUnloading:
    """Plan one unloading and draw its layers; frames are composited on demand by `frame(i)`.

    `grade` and `contamination_pct` (the requested railcar mean) are sampled when not given.
    The truth is what was drawn: see `layer_contamination_pct` and `contamination_pct`.
    """
    if not 0.0 <= defect_share <= 1.0:
        raise ValueError("defect_share must be within [0, 1]")
    if frames_per_layer < 1 or layers[0] < 1 or layers[1] < layers[0]:
        raise ValueError("need frames_per_layer >= 1 and 1 <= layers[0] <= layers[1]")
    if grade is not None and grade not in GRADES:
        raise ValueError(f"grade must be one of {', '.join(GRADES)}")
    if width < 96 or height < 54 or not 1.0 <= width / height <= 2.5:
        raise ValueError("frames must be at least 96x54 pixels, landscape, at most 2.5:1")
    railcar = f"RC-{int(rng.integers(10_000_000, 100_000_000))}"
    line = f"L{int(rng.integers(1, 7))}"
    grade = grade if grade is not None else GRADES[int(rng.integers(len(GRADES)))]
    target = contamination_pct if contamination_pct is not None else sample_contamination_pct(rng)
    n_layers = int(rng.integers(layers[0], layers[1] + 1))
    layout = scene.make_layout(width=width, height=height, rng=rng)

    # Layers vary around the railcar's value; the factors average 1 so the mean is kept.
    factors = rng.lognormal(0.0, 0.45, n_layers)
    factors /= factors.mean()
    kind_weights = rng.dirichlet(np.full(4, 1.2))
    empty_scene = scene.railcar_scene(layout)
    bases, classes, pct = [], [], []
    for k in range(n_layers):
        depth = min(k, 7)
        x0, y0, x1, y1 = layout.interior(depth)
        surface = render_layer(
            rng=rng,
            grade=grade,
            contamination=min(0.4, target / 100 * factors[k]),
            kind_weights=kind_weights,
            size=(y1 - y0, x1 - x0),
            offset=(x0, y0),
            frame_size=(height, width),
            bottom=k == n_layers - 1 and n_layers > 1,
        )
        full = np.zeros((height, width), np.uint8)
        full[y0:y1, x0:x1] = surface.classes
        bases.append(scene.layer_frame(empty_scene, layout, surface, depth))
        classes.append(full)
        pct.append(100.0 * surface.contamination)

    magnet, grabs, surface_layers = _magnet_path(layout, n_layers, frames_per_layer, rng)
    n = len(magnet)
    boxes = [scene.magnet_box(centre=c, radius=r, width=width, height=height) for c, r in magnet]
    for box, grab in zip(boxes, grabs, strict=True):
        value = box_iou(box, layout.railcar_box)
        if (grab is None and value > 0) or (grab is not None and value < MIN_GRAB_IOU):
            raise RuntimeError(f"magnet path broke the IoU contract ({value:.3f}, grab {grab})")

    defects: list[str | None] = [None] * n
    for i in rng.choice(n, size=round(defect_share * n), replace=False):
        defects[int(i)] = scene.DEFECT_KINDS[int(rng.integers(len(scene.DEFECT_KINDS)))]
    start = datetime(2026, 1, 5, 6, 0, tzinfo=UTC) + timedelta(
        days=int(rng.integers(0, 300)), seconds=int(rng.integers(0, 86_400))
    )
    steps = np.cumsum(rng.uniform(_FRAME_STEP_S - 0.04, _FRAME_STEP_S + 0.04, n)) - _FRAME_STEP_S
    return SyntheticUnloading(
        railcar=railcar,
        line=line,
        camera=f"{line}-TOP-1",
        grade=grade,
        layout=layout,
        captured_at=[start + timedelta(milliseconds=round(float(s) * 1000)) for s in steps],
        magnet_boxes=boxes,
        railcar_boxes=[layout.railcar_box] * n,
        grabs=grabs,
        surface_layers=surface_layers,
        defects=defects,
        layer_classes=classes,
        layer_contamination_pct=pct,
        _bases=bases,
        _empty=empty_scene,
        _magnet=magnet,
        _pivot=(width * rng.uniform(0.25, 0.75), -0.9 * height),
        _strength=[float(x) for x in rng.random(n)],
    )


def _magnet_path(
    layout: scene.Layout, n_layers: int, per_layer: int, rng: np.random.Generator
) -> tuple[list[tuple[tuple[float, float], float]], list[int | None], list[int]]:
    """Magnet centre and radius per frame, the grab of each frame, and the layer it shows."""
    x0, y0, x1, y1 = layout.railcar_box
    big_r = layout.magnet_radius
    lifted = 1.15 * big_r  # higher up is nearer the camera
    path: list[tuple[tuple[float, float], float]] = []
    grabs: list[int | None] = []
    shows: list[int] = []

    def away(n: int, layer: int) -> None:
        for _ in range(n):
            # Box bottom strictly above the railcar box: IoU exactly 0.
            cy = y0 - lifted - 2 - rng.uniform(0, 0.3) * big_r
            cx = rng.uniform(0.15, 0.85) * layout.width
            path.append(((cx, cy), lifted))
            grabs.append(None)
            shows.append(layer)

    away(_AWAY_BEFORE, 1)
    for k in range(1, n_layers + 1):
        hx = rng.uniform(x0 + 1.1 * big_r, x1 - 1.1 * big_r)
        hy = (y0 + y1) / 2 + rng.uniform(-0.06, 0.06) * (y1 - y0)
        drift = rng.uniform(-0.12, 0.12) * layout.width
        for i in range(per_layer):
            down = np.sin(np.pi * (i / (per_layer - 1) if per_layer > 1 else 0.5))
            # Enter and leave across the railcar's north wall, the disc a third inside it.
            cx = np.clip(hx + (1 - down) * drift, x0 + 0.6 * big_r, x1 - 0.6 * big_r)
            cy = y0 + 0.35 * big_r + (hy - y0 - 0.35 * big_r) * down
            cx, cy = cx + rng.normal(0, 0.01) * big_r, cy + rng.normal(0, 0.01) * big_r
            path.append(((cx, cy), lifted - (lifted - big_r) * down))
            grabs.append(k)
            shows.append(k)
        away(_AWAY_BETWEEN if k < n_layers else _AWAY_AFTER, min(k + 1, n_layers))
    return path, grabs, shows


def encode_jpeg(frame: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def write_unloading(
    unloading: SyntheticUnloading, *, folder: Path, named_layers: bool = False
) -> tuple[str, ...]:
    """Write frames and unloading.json into `folder`; return the frame file names."""
    folder.mkdir(parents=True, exist_ok=True)
    frames, files = [], []
    for i in range(len(unloading)):
        name = f"{i + 1:06d}.jpg"
        data = encode_jpeg(unloading.frame(i))
        (folder / name).write_bytes(data)
        entry: dict = {
            "file": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "captured_at": unloading.captured_at[i]
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
        }
        if named_layers:
            entry["layer"] = unloading.surface_layers[i]
        else:
            entry["magnet_box"] = _box_json(unloading.magnet_boxes[i])
            entry["railcar_box"] = _box_json(unloading.railcar_boxes[i])
        frames.append(entry)
        files.append(name)
    manifest = {
        "railcar": unloading.railcar,
        "line": unloading.line,
        "camera": unloading.camera,
        "frames": frames,
    }
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1) + "\n")
    return tuple(files)


def _box_json(box: Box | None) -> list[int] | None:
    return None if box is None else [int(v) for v in box]


def railcar_rng(*, seed: int, index: int) -> np.random.Generator:
    """Railcar `index` of a run depends on (seed, index) only, so runs share their prefixes."""
    return np.random.default_rng([seed, index])


def write_unloadings(
    *,
    out_dir: Path,
    railcars: int,
    seed: int,
    defect_share: float = 0.1,
    width: int = 1920,
    height: int = 1080,
    layers: tuple[int, int] = (4, 6),
    frames_per_layer: int = 5,
    named_layers: bool = False,
) -> list[TruthRecord]:
    """Write unloading folders `unloading-0001`, ... and `labels.jsonl` into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for index in range(railcars):
        unloading = render_unloading(
            rng=railcar_rng(seed=seed, index=index),
            width=width,
            height=height,
            layers=layers,
            frames_per_layer=frames_per_layer,
            defect_share=defect_share,
        )
        folder = f"unloading-{index + 1:04d}"
        files = write_unloading(unloading, folder=out_dir / folder, named_layers=named_layers)
        records.append(
            TruthRecord(
                folder=folder,
                railcar=unloading.railcar,
                grade=unloading.grade,
                contamination_pct_exact=unloading.contamination_pct,
                layer_contamination_pct=tuple(unloading.layer_contamination_pct),
                files=files,
                frame_defects=tuple(unloading.defects),
                frame_grabs=tuple(unloading.grabs),
            )
        )
    lines = [json.dumps(r.as_json(), sort_keys=True) for r in records]
    (out_dir / LABELS_FILE).write_text("".join(line + "\n" for line in lines))
    return records


__all__ = [
    "GRADES",
    "LABELS_FILE",
    "SyntheticUnloading",
    "TruthRecord",
    "inclusion_share",
    "render_unloading",
    "write_unloadings",
]
