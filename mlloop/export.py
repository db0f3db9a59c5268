"""Export a dataset version as a folder or a zip archive that training code outside the app reads.

The layout (mlloop/dataset_import.py reads it back and checks every part of it):

- `dataset.json`: the version's number, name, notes, content hash, histograms, and the SHA-256
  of the two files below;
- `manifest.jsonl`: one line per railcar: its uid (the plant's real id only when asked for), split,
  label with provenance, and its layers with their frames (export file name, SHA-256, size,
  eligible, the failure codes raters excluded it with);
- `annotations.coco.json`: COCO, images = the exported frames, one category, annotations = the
  raters' masks as compressed RLE with area, bbox, the inclusion kind and the rater's letter
  (A, B, C: the order of their ratings, never who they are);
- `frames/<sha256>.<ext>`: the eligible frames, byte for byte as stored.

Frames are streamed from storage and re-hashed on the way: a frame whose stored bytes no longer
match its SHA-256 stops the export rather than shipping a silently wrong file.
"""

import hashlib
import json
import shutil
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.db import transaction

from adjudication.models import FinalLabel
from adjudication.raters import rater_letter
from labeling import rle
from labeling.framefiles import open_frame
from labeling.models import Frame, FrameExclusion, Layer, Mask
from mlloop.models import DatasetItem, DatasetVersion
from scrapannot import audit

FORMAT = "scrapannot-dataset"
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
MANIFEST = "manifest.jsonl"
COCO = "annotations.coco.json"
CATEGORY = {"id": 1, "name": "non-metallic contamination", "supercategory": "contamination"}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png"}
CHUNK = 1024 * 1024
# Railcars loaded from the database at a time: bounds memory for versions of any size.
BATCH = 200


class ExportError(Exception):
    pass


class _Writer:
    """Files into a directory or a zip archive, one at a time."""

    def __init__(self, dest: Path | IO[bytes]) -> None:
        self.zip: zipfile.ZipFile | None = None
        self.root: Path | None = None
        if isinstance(dest, Path) and dest.suffix != ".zip":
            if dest.exists() and any(dest.iterdir()):
                raise ExportError(f"{dest} exists and is not empty")
            (dest / "frames").mkdir(parents=True, exist_ok=True)
            self.root = dest
        else:
            self.zip = zipfile.ZipFile(dest, "w", allowZip64=True)

    def open(self, name: str, *, compress: bool) -> IO[bytes]:
        if self.zip is not None:
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            return self.zip.open(info, "w", force_zip64=True)
        return (self.root / name).open("xb")

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _dumps(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _copy_frame(frame: Frame, out: IO[bytes]) -> None:
    digest = hashlib.sha256()
    try:
        with open_frame(frame=frame) as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except OSError as exc:
        raise ExportError(f"frame {frame.uid}: file unreadable ({exc})") from exc
    if digest.hexdigest() != frame.content_sha256:
        raise ExportError(f"frame {frame.uid}: stored bytes do not match its SHA-256")


def frame_name(frame: Frame) -> str:
    return f"frames/{frame.content_sha256}.{EXTENSIONS.get(frame.image_format, 'jpg')}"


def bbox(mask: np.ndarray) -> list[int]:
    """COCO [x, y, width, height] of the set pixels (zeros for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return [0, 0, 0, 0]
    x0, y0 = int(xs.min()), int(ys.min())
    return [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1]


@dataclass
class _Batch:
    """Everything the manifest and COCO need for a few railcars, in a handful of queries."""

    layers: dict[int, list[Layer]]
    frames: dict[int, list[Frame]]
    letters: dict[int, str]  # assignment id -> rater letter (per railcar)
    exclusions: dict[int, list[dict[str, str]]]  # frame id -> [{"rater", "code"}]
    masks: dict[int, list[Mask]]  # frame id -> masks


def _load(items: list[DatasetItem]) -> _Batch:
    railcar_ids = [item.railcar_id for item in items]
    layers: dict[int, list[Layer]] = defaultdict(list)
    for layer in Layer.objects.filter(railcar_id__in=railcar_ids).order_by("railcar_id", "index"):
        layers[layer.railcar_id].append(layer)
    frames: dict[int, list[Frame]] = defaultdict(list)
    for frame in Frame.objects.filter(railcar_id__in=railcar_ids, layer__isnull=False):
        frames[frame.layer_id].append(frame)
    # The raters behind each frozen label, lettered in the order of their ratings.
    through = FinalLabel.ratings.through.objects.filter(
        finallabel_id__in=[item.final_label_id for item in items]
    ).order_by("finallabel_id", "rating_id")
    letters: dict[int, str] = {}
    per_label: dict[int, int] = defaultdict(int)
    for label_id, assignment_id in through.values_list("finallabel_id", "rating__assignment_id"):
        letters[assignment_id] = rater_letter(per_label[label_id])
        per_label[label_id] += 1
    exclusions: dict[int, list[dict[str, str]]] = defaultdict(list)
    for assignment_id, frame_id, code in (
        FrameExclusion.objects.filter(assignment_id__in=letters)
        .order_by("assignment_id", "frame_id")
        .values_list("assignment_id", "frame_id", "code")
    ):
        exclusions[frame_id].append({"rater": letters[assignment_id], "code": code})
    masks: dict[int, list[Mask]] = defaultdict(list)
    for mask in Mask.objects.filter(assignment_id__in=letters).order_by("id"):
        masks[mask.frame_id].append(mask)
    return _Batch(layers, frames, letters, exclusions, masks)


def _items(version: DatasetVersion) -> Iterator[list[DatasetItem]]:
    items = version.items.select_related("railcar", "final_label").order_by("railcar__uid")
    batch: list[DatasetItem] = []
    for item in items.iterator(chunk_size=BATCH):
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _label(item: DatasetItem) -> dict[str, Any]:
    label = item.final_label
    if label is None:  # another label source (an operator's amendment): its own provenance
        return {
            "contamination_pct": str(item.contamination_pct),
            "grade": item.grade,
            "std_pct": item.std_pct,
            "source": item.source,
            # The same keys as a final label's, so a reader need not tell the two apart.
            "method": item.source,
            "decided_at": str(item.provenance.get("decided_at", "")),
            "provenance": item.provenance,
        }
    return {
        "contamination_pct": str(item.contamination_pct),
        "grade": item.grade,
        "std_pct": item.std_pct,
        "source": label.source,
        "method": label.method,
        "decided_at": label.decided_at.isoformat(),
        "provenance": label.provenance,
    }


class _Coco:
    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []

    def add(self, frame: Frame, item: DatasetItem, layer: Layer, batch: _Batch) -> None:
        image_id = len(self.images) + 1
        self.images.append(
            {
                "id": image_id,
                "file_name": frame_name(frame),
                "width": frame.width,
                "height": frame.height,
                "railcar": str(item.railcar.uid),
                "layer": layer.index,
                "frame_index": frame.index,
            }
        )
        for mask in batch.masks.get(frame.pk, []):
            pixels = rle.decode(mask.rle)
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": CATEGORY["id"],
                    "segmentation": {"size": mask.rle["size"], "counts": mask.rle["counts"]},
                    "area": int(pixels.sum()),
                    "bbox": bbox(pixels),
                    "iscrowd": 0,
                    "attributes": {
                        "rater": batch.letters[mask.assignment_id],
                        "inclusion_kind": mask.kind,
                    },
                }
            )

    def document(self, version: DatasetVersion) -> dict[str, Any]:
        return {
            "info": {
                "description": f"scrapannot dataset v{version.number}",
                "version": str(version.number),
                "content_hash": version.content_hash,
            },
            "images": self.images,
            "annotations": self.annotations,
            "categories": [CATEGORY],
        }


def _manifest_line(
    item: DatasetItem, batch: _Batch, *, include_real_ids: bool, eligible: set[int]
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "railcar": str(item.railcar.uid),
        "split": item.split,
        "label": _label(item),
        "layers": [
            {
                "index": layer.index,
                "frames": [
                    {
                        "index": f.index,
                        "file": frame_name(f) if f.pk in eligible else None,
                        "sha256": f.content_sha256,
                        "width": f.width,
                        "height": f.height,
                        "eligible": f.pk in eligible,
                        "excluded": batch.exclusions.get(f.pk, []),
                    }
                    for f in sorted(batch.frames.get(layer.pk, []), key=lambda f: f.index)
                ],
            }
            for layer in batch.layers.get(item.railcar_id, [])
        ],
    }
    if include_real_ids:
        line["real_id"] = item.railcar.real_id
    return line


def _write(version: DatasetVersion, writer: _Writer, *, include_real_ids: bool) -> None:
    coco = _Coco()
    written: set[str] = set()
    frames = 0
    # The manifest goes into the archive after the frames (a zip takes one file at a time).
    with tempfile.SpooledTemporaryFile(max_size=8 * CHUNK) as manifest:
        manifest_digest = hashlib.sha256()
        for items in _items(version):
            batch = _load(items)
            for item in items:
                eligible: set[int] = set()
                for layer in batch.layers.get(item.railcar_id, []):
                    for frame in sorted(batch.frames.get(layer.pk, []), key=lambda f: f.index):
                        if frame.quality != Frame.Quality.ELIGIBLE:
                            continue
                        if not frame.file:
                            raise ExportError(f"frame {frame.uid} is eligible but has no file")
                        eligible.add(frame.pk)
                        frames += 1
                        coco.add(frame, item, layer, batch)
                        name = frame_name(frame)
                        if name not in written:  # equal bytes in two frames: one file
                            with writer.open(name, compress=False) as out:
                                _copy_frame(frame, out)
                            written.add(name)
                line = _dumps(
                    _manifest_line(
                        item, batch, include_real_ids=include_real_ids, eligible=eligible
                    )
                )
                manifest.write(line + b"\n")
                manifest_digest.update(line + b"\n")
        manifest.seek(0)
        with writer.open(MANIFEST, compress=True) as out:
            shutil.copyfileobj(manifest, out, CHUNK)
    coco_bytes = _dumps(coco.document(version))
    with writer.open(COCO, compress=True) as out:
        out.write(coco_bytes)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "number": version.number,
        "name": version.name,
        "notes": version.notes,
        "created_at": version.created_at.isoformat(),
        "content_hash": version.content_hash,
        "railcar_count": version.railcar_count,
        "frame_count": frames,
        "mask_count": len(coco.annotations),
        "histograms": version.histograms,
        "real_ids_included": include_real_ids,
        "files": {
            MANIFEST: manifest_digest.hexdigest(),
            COCO: hashlib.sha256(coco_bytes).hexdigest(),
        },
    }
    with writer.open(DATASET_JSON, compress=True) as out:
        out.write(json.dumps(meta, indent=2, sort_keys=True, ensure_ascii=False).encode())


def export_version(
    version: DatasetVersion,
    dest: Path | IO[bytes],
    *,
    include_real_ids: bool = False,
    actor: Any = None,
    actor_label: str | None = None,
) -> None:
    """Write `version` to `dest`: a directory (created; must be empty), a path ending in .zip, or
    a binary file object (a zip). A failed export to a path leaves nothing behind; a finished
    one is audited (who took which version, with or without the plant's ids)."""
    _export(version, dest, include_real_ids=include_real_ids)
    with transaction.atomic():
        audit.record(
            action="dataset.exported",
            actor=actor,
            actor_label=actor_label,
            obj=version,
            payload={
                "number": version.number,
                "real_ids": include_real_ids,
                "to": "folder" if isinstance(dest, Path) and dest.is_dir() else "zip",
            },
        )


def _export(version: DatasetVersion, dest: Path | IO[bytes], *, include_real_ids: bool) -> None:
    created = isinstance(dest, Path) and not dest.exists()
    try:
        writer = _Writer(dest)
        try:
            _write(version, writer, include_real_ids=include_real_ids)
        finally:
            writer.close()
    except BaseException:
        if created and isinstance(dest, Path):
            if dest.is_dir():
                shutil.rmtree(dest)
            else:
                dest.unlink(missing_ok=True)
        raise
