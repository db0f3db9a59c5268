"""Read an exported dataset (mlloop/export.py) back, trusting nothing in it.

The archive may come from anywhere, so reading it is bounded and strict: only the names the
format defines are accepted (no absolute paths, no `..`, no backslashes, no other files), no
symbolic links, no duplicate or encrypted members, limits on member count, member size, total size
and compression ratio (zip bombs), and every part is checked: the schema of each JSON document,
the SHA-256 of the manifest, of the COCO file and of every frame, the content hash recomputed from
the manifest, and every mask decoded against its image's size.
"""

import hashlib
import json
import math
import os
import re
import stat
import uuid
import zipfile
import zlib
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from adjudication.models import FinalLabel
from labeling import rle
from labeling.annotation_models import Grade
from mlloop.datasets import SPLITS, Row, content_hash
from mlloop.export import CATEGORY, COCO, DATASET_JSON, FORMAT, FORMAT_VERSION, MANIFEST, bbox

_NAME = re.compile(
    r"^(dataset\.json|manifest\.jsonl|annotations\.coco\.json|frames/[0-9a-f]{64}\.(jpg|png))$"
)
_SHA = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class DatasetImportError(ValueError):
    """The archive is not a valid dataset export; the message says what is wrong."""


@dataclass(frozen=True)
class ImportLimits:
    max_members: int = 500_000
    max_json_bytes: int = 1024 * 1024 * 1024
    max_frame_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 256 * 1024 * 1024 * 1024
    # Uncompressed / compressed size of one member: JSON deflates about 10x, a bomb 1000x.
    max_ratio: float = 200.0


class _Zip:
    def __init__(self, path: Path, limits: ImportLimits) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
            infos = self.zip.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            raise DatasetImportError(f"not a readable zip archive: {exc}") from exc
        if len(infos) > limits.max_members:
            raise DatasetImportError(f"more than {limits.max_members} members")
        self.sizes: dict[str, int] = {}
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename
            if name == "frames/":
                continue
            _check_name(name)
            if name in self.infos:
                raise DatasetImportError(f"duplicate member {name!r}")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DatasetImportError(f"{name!r} is a symbolic link")
            if info.flag_bits & 0x1:
                raise DatasetImportError(f"{name!r} is encrypted")
            if info.file_size > 1024 * 1024 and info.file_size > limits.max_ratio * max(
                info.compress_size, 1
            ):
                raise DatasetImportError(f"{name!r} expands more than {limits.max_ratio:g}x")
            self.infos[name] = info
            self.sizes[name] = info.file_size

    def open(self, name: str) -> IO[bytes]:
        return self.zip.open(self.infos[name])

    def close(self) -> None:
        self.zip.close()


class _Folder:
    def __init__(self, root: Path, limits: ImportLimits) -> None:
        if root.is_symlink() or not root.is_dir():
            raise DatasetImportError(f"{root} is not a directory")
        self.root = root
        self.sizes: dict[str, int] = {}
        for folder, dirs, files in os.walk(root, followlinks=False):
            for entry in dirs + files:
                path = Path(folder) / entry
                name = path.relative_to(root).as_posix()
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    raise DatasetImportError(f"{name!r} is a symbolic link")
                if stat.S_ISDIR(info.st_mode):
                    if name != "frames":
                        raise DatasetImportError(f"unexpected folder {name!r}")
                    continue
                _check_name(name)
                if not stat.S_ISREG(info.st_mode):
                    raise DatasetImportError(f"{name!r} is not a regular file")
                self.sizes[name] = info.st_size
                if len(self.sizes) > limits.max_members:
                    raise DatasetImportError(f"more than {limits.max_members} members")

    def open(self, name: str) -> IO[bytes]:
        # O_NOFOLLOW: a file swapped for a link after the walk is refused, not followed.
        fd = os.open(self.root / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")

    def close(self) -> None:
        pass


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise DatasetImportError(f"unexpected member {name[:200]!r}")


@dataclass
class ImportedDataset:
    """A validated export: its metadata, manifest lines and COCO document; frames on demand."""

    meta: dict[str, Any]
    items: list[dict[str, Any]]
    coco: dict[str, Any]
    source: _Zip | _Folder = field(repr=False)

    def rows(self) -> dict[str, Row]:
        return {item["railcar"]: _row(item) for item in self.items}

    def read_frame(self, name: str) -> bytes:
        with self.source.open(name) as stream:
            return stream.read()

    def close(self) -> None:
        self.source.close()

    def __enter__(self) -> "ImportedDataset":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read(source: _Zip | _Folder, name: str, limit: int) -> bytes:
    """A member's bytes, reading at most `limit` + 1 of them whatever its header says."""
    if name not in source.sizes:
        raise DatasetImportError(f"{name} is missing")
    if source.sizes[name] > limit:
        raise DatasetImportError(f"{name} is larger than {limit} bytes")
    try:
        with source.open(name) as stream:
            data = stream.read(limit + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DatasetImportError(f"{name} is corrupt: {exc}") from exc
    if len(data) > limit:
        raise DatasetImportError(f"{name} is larger than {limit} bytes")
    return data


def _sha_of(source: _Zip | _Folder, name: str, limit: int) -> str:
    digest, total = hashlib.sha256(), 0
    try:
        with source.open(name) as stream:
            while chunk := stream.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise DatasetImportError(f"{name} is larger than {limit} bytes")
                digest.update(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise DatasetImportError(f"{name} is corrupt: {exc}") from exc
    return digest.hexdigest()


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise DatasetImportError(f"{what} is not valid JSON: {exc!r:.200}") from exc


def _need(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict):
        raise DatasetImportError(f"{where}: expected an object")
    value = obj.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
        raise DatasetImportError(f"{where}: {key!r} is missing or has the wrong type")
    return value


def _tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _check_meta(meta: Any) -> None:
    if _need(meta, "format", str, DATASET_JSON) != FORMAT:
        raise DatasetImportError(f"{DATASET_JSON}: not a {FORMAT} export")
    if _need(meta, "format_version", int, DATASET_JSON) != FORMAT_VERSION:
        raise DatasetImportError(f"{DATASET_JSON}: format version {meta['format_version']}")
    _need(meta, "number", int, DATASET_JSON)
    _need(meta, "railcar_count", int, DATASET_JSON)
    _need(meta, "name", str, DATASET_JSON)
    _need(meta, "notes", str, DATASET_JSON)
    for key in ("content_hash",):
        if not _SHA.match(_need(meta, key, str, DATASET_JSON)):
            raise DatasetImportError(f"{DATASET_JSON}: {key} is not a SHA-256")
    files = _need(meta, "files", dict, DATASET_JSON)
    for name in (MANIFEST, COCO):
        if not _SHA.match(_need(files, name, str, f"{DATASET_JSON} files")):
            raise DatasetImportError(f"{DATASET_JSON}: the SHA-256 of {name} is malformed")


def _row(item: dict[str, Any]) -> Row:
    label = item["label"]
    return Row(
        item["railcar"],
        item["split"],
        Decimal(label["contamination_pct"]),
        label["grade"],
        label["std_pct"],
        # A label source other than the final labels is part of the hash (mlloop.datasets.Row).
        extra_source="" if label["source"] in FinalLabel.Source.values else label["source"],
    )


def _check_item(item: Any, where: str) -> list[dict[str, Any]]:
    """Validate one manifest line; its frames."""
    try:
        uuid.UUID(_need(item, "railcar", str, where))
    except ValueError as exc:
        raise DatasetImportError(f"{where}: railcar is not a uid") from exc
    if _need(item, "split", str, where) not in SPLITS:
        raise DatasetImportError(f"{where}: unknown split")
    label = _need(item, "label", dict, where)
    try:
        pct = Decimal(_need(label, "contamination_pct", str, where))
    except InvalidOperation as exc:
        raise DatasetImportError(f"{where}: contamination is not a number") from exc
    if not (pct.is_finite() and 0 <= pct <= 100 and pct == pct.quantize(Decimal("0.1"))):
        raise DatasetImportError(f"{where}: contamination must be 0-100 with one decimal")
    if _need(label, "grade", str, where) not in Grade.values:
        raise DatasetImportError(f"{where}: unknown grade")
    std = _need(label, "std_pct", (int, float), where)
    if not math.isfinite(std) or std < 0:
        raise DatasetImportError(f"{where}: std_pct must be a finite number >= 0")
    label["std_pct"] = float(std)
    _need(label, "source", str, where)
    _need(label, "method", str, where)
    frames = []
    for layer in _need(item, "layers", list, where):
        _need(layer, "index", int, where)
        for frame in _need(layer, "frames", list, where):
            sha = _need(frame, "sha256", str, where)
            if _need(frame, "eligible", bool, where):
                name = _need(frame, "file", str, where)
                if not (_SHA.match(sha) and name.startswith(f"frames/{sha}.")):
                    raise DatasetImportError(f"{where}: frame file {name[:100]!r} is not its hash")
                _need(frame, "width", int, where)
                _need(frame, "height", int, where)
                frames.append(frame)
            _need(frame, "excluded", list, where)
    return frames


def _check_coco(coco: Any, frames: dict[str, dict[str, Any]]) -> None:
    if _need(coco, "categories", list, COCO) != [CATEGORY]:
        raise DatasetImportError(f"{COCO}: categories differ from the format's one category")
    images: dict[int, dict[str, Any]] = {}
    for image in _need(coco, "images", list, COCO):
        image_id = _need(image, "id", int, COCO)
        frame = frames.get(_need(image, "file_name", str, COCO))
        if image_id in images or frame is None:
            raise DatasetImportError(f"{COCO}: image {image_id} is a duplicate or not exported")
        if (image.get("width"), image.get("height")) != (frame["width"], frame["height"]):
            raise DatasetImportError(f"{COCO}: image {image_id} size differs from the manifest")
        images[image_id] = image
    for ann in _need(coco, "annotations", list, COCO):
        where = f"{COCO} annotation {ann.get('id') if isinstance(ann, dict) else '?'}"
        image = images.get(_need(ann, "image_id", int, where))
        if image is None or _need(ann, "category_id", int, where) != CATEGORY["id"]:
            raise DatasetImportError(f"{where}: unknown image or category")
        segmentation = _need(ann, "segmentation", dict, where)
        if segmentation.get("size") != [image["height"], image["width"]]:
            raise DatasetImportError(f"{where}: mask size differs from its image")
        try:
            pixels = rle.decode(segmentation)
        except (ValueError, TypeError, IndexError) as exc:
            raise DatasetImportError(f"{where}: mask does not decode: {exc}") from exc
        if ann.get("area") != int(pixels.sum()) or ann.get("bbox") != bbox(pixels):
            raise DatasetImportError(f"{where}: area or bbox differs from the mask")
        _need(_need(ann, "attributes", dict, where), "rater", str, where)


def import_version(path: Path, *, limits: ImportLimits | None = None) -> ImportedDataset:
    """Validate the export at `path` (a folder or a .zip) and return what it holds.

    Raises DatasetImportError, naming the first problem found."""
    limits = limits or ImportLimits()
    path = Path(path)
    source: _Zip | _Folder = _Folder(path, limits) if path.is_dir() else _Zip(path, limits)
    try:
        if sum(source.sizes.values()) > limits.max_total_bytes:
            raise DatasetImportError(f"more than {limits.max_total_bytes} bytes in all")
        meta_bytes = _read(source, DATASET_JSON, limits.max_json_bytes)
        meta = _json(meta_bytes, DATASET_JSON)
        _check_meta(meta)
        manifest = _read(source, MANIFEST, limits.max_json_bytes)
        coco_bytes = _read(source, COCO, limits.max_json_bytes)
        for name, data in ((MANIFEST, manifest), (COCO, coco_bytes)):
            if hashlib.sha256(data).hexdigest() != meta["files"][name]:
                raise DatasetImportError(f"{name}: SHA-256 differs from {DATASET_JSON}")
        items, frames = [], {}
        for number, line in enumerate(manifest.splitlines(), start=1):
            item = _json(line, f"{MANIFEST} line {number}")
            frames |= {f["file"]: f for f in _check_item(item, f"{MANIFEST} line {number}")}
            items.append(item)
        rows = [_row(item) for item in items]
        if len({r.railcar_uid for r in rows}) != len(rows):
            raise DatasetImportError(f"{MANIFEST}: a railcar appears twice")
        if len(rows) != meta["railcar_count"] or content_hash(rows) != meta["content_hash"]:
            raise DatasetImportError(f"{MANIFEST}: content differs from its content hash")
        coco = _json(coco_bytes, COCO)
        _check_coco(coco, frames)
        stray = {n for n in source.sizes if n.startswith("frames/")} - frames.keys()
        if stray:
            raise DatasetImportError(f"frame files the manifest does not name: {sorted(stray)[0]}")
        for name, frame in frames.items():
            if name not in source.sizes:
                raise DatasetImportError(f"{name} is missing")
            if _sha_of(source, name, limits.max_frame_bytes) != frame["sha256"]:
                raise DatasetImportError(f"{name}: bytes differ from its SHA-256")
    except BaseException:
        source.close()
        raise
    return ImportedDataset(meta=meta, items=items, coco=coco, source=source)
