"""Exporting a dataset version and reading it back: the round trip, what an export must not
contain, and archives that are corrupt, truncated, oversized or malicious."""

import hashlib
import io
import json
import os
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from adjudication.models import FinalLabel
from labeling import rle
from labeling.models import Assignment, Frame, Mask, Railcar
from mlloop.dataset_import import DatasetImportError, ImportLimits, import_version
from mlloop.datasets import freeze_version
from mlloop.export import ExportError, export_version
from mlloop.models import DatasetVersion
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rated_railcar
from tests.concurrency import run_at_once
from tests.mlloop.dataset_factories import relabel

pytestmark = pytest.mark.django_db(transaction=True)


def _mask(frame: Frame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros((frame.height, frame.width), bool)
    y, x = rng.integers(0, frame.height - 10), rng.integers(0, frame.width - 20)
    mask[y : y + 9, x : x + 17] = True
    mask[rng.integers(0, frame.height), rng.integers(0, frame.width)] = True
    return mask


@pytest.fixture
def version(admin_user) -> DatasetVersion:
    """Two railcars rated through the real path: the first with masks from all three raters and
    a frame excluded by one; one frame of the second ineligible."""
    masked, _ = rated_railcar(
        ["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"], prefix="hidden-m", exclude_first_frame_by=[1]
    )
    other, _ = rated_railcar(["1.0", "1.1", "1.0"], ["3AH"] * 3, prefix="hidden-o")
    frames = list(masked.frames.order_by("index"))
    for i, assignment in enumerate(Assignment.objects.filter(railcar=masked).order_by("id")):
        frame = frames[-1 - (i % 2)]
        pixels = _mask(frame, i)
        Mask.objects.create(
            assignment=assignment, frame=frame, rle=rle.encode(pixels), prompts={},
            engine="test", area=int(pixels.sum()), kind=("soil", "wood", "rubber")[i],
        )  # fmt: skip
    other.frames.filter(index=1).update(quality=Frame.Quality.INELIGIBLE)
    return freeze_version(actor=admin_user, name="export me")


def _stored(frame: Frame) -> bytes:
    with default_storage.open(frame.file.name, "rb") as f:
        return f.read()


@pytest.mark.parametrize("kind", ["folder", "zip"])
def test_export_and_import_round_trip_items_labels_splits_frames_and_masks(version, tmp_path, kind):
    dest = tmp_path / ("out.zip" if kind == "zip" else "out")
    export_version(version, dest)

    with import_version(dest) as data:
        assert data.meta["number"] == version.number
        assert data.meta["content_hash"] == version.content_hash
        assert data.meta["name"] == "export me"
        items = {item["railcar"]: item for item in data.items}
        assert len(items) == version.railcar_count == 2
        for db_item in version.items.select_related("railcar", "final_label"):
            item = items[str(db_item.railcar.uid)]
            assert item["split"] == db_item.split
            assert item["label"]["contamination_pct"] == str(db_item.contamination_pct)
            assert item["label"]["grade"] == db_item.grade
            assert item["label"]["std_pct"] == db_item.std_pct
            assert item["label"]["provenance"] == db_item.final_label.provenance
            assert item["label"]["source"] == db_item.final_label.source
            exported = [f for layer in item["layers"] for f in layer["frames"]]
            db_frames = list(db_item.railcar.frames.order_by("index"))
            assert [f["index"] for f in exported] == [f.index for f in db_frames]
            for entry, frame in zip(exported, db_frames, strict=True):
                assert entry["sha256"] == frame.content_sha256
                if frame.quality == Frame.Quality.ELIGIBLE:
                    assert data.read_frame(entry["file"]) == _stored(frame)
                else:
                    assert entry["file"] is None and entry["eligible"] is False
        masked = Mask.objects.first().frame.railcar
        first = items[str(masked.uid)]["layers"][0]["frames"][0]
        assert first["excluded"] == [{"rater": "B", "code": "blur"}]

        images = {image["id"]: image for image in data.coco["images"]}
        assert len(images) == Frame.objects.filter(quality=Frame.Quality.ELIGIBLE).count()
        by_frame = {}
        for ann in data.coco["annotations"]:
            image = images[ann["image_id"]]
            by_frame.setdefault((image["railcar"], image["frame_index"]), []).append(ann)
        db_masks = Mask.objects.select_related("frame", "assignment").order_by("id")
        assert len(data.coco["annotations"]) == db_masks.count() == 3
        # Raters are lettered in the order of their ratings.
        order = list(masked.ratings.order_by("id").values_list("assignment_id", flat=True))
        for mask in db_masks:
            anns = by_frame[(str(masked.uid), mask.frame.index)]
            letter = "ABC"[order.index(mask.assignment_id)]
            [ann] = [a for a in anns if a["attributes"]["rater"] == letter]
            assert np.array_equal(rle.decode(ann["segmentation"]), rle.decode(mask.rle))
            assert ann["area"] == mask.area
            assert ann["attributes"]["inclusion_kind"] == mask.kind


def test_an_export_names_no_plant_id_and_no_person_unless_asked(version, tmp_path, annotator):
    real_ids = list(Railcar.objects.values_list("real_id", flat=True))
    people = list(Assignment.objects.values_list("annotator__username", flat=True).distinct())
    plain, with_ids = tmp_path / "plain", tmp_path / "ids"
    export_version(version, plain)
    export_version(version, with_ids, include_real_ids=True)
    blob = b"".join(p.read_bytes() for p in plain.rglob("*") if p.is_file())
    for secret in real_ids + people:
        assert secret.encode() not in blob
    listing = " ".join(p.name for p in plain.rglob("*"))
    assert not any(real_id in listing for real_id in real_ids)
    with import_version(with_ids) as data:
        assert sorted(item["real_id"] for item in data.items) == sorted(real_ids)


def test_an_export_stops_on_a_frame_whose_bytes_changed_and_leaves_nothing(version, tmp_path):
    frame = Frame.objects.filter(quality=Frame.Quality.ELIGIBLE).order_by("id").last()
    with open(default_storage.path(frame.file.name), "ab") as f:
        f.write(b"tampered")
    for dest in (tmp_path / "out", tmp_path / "out.zip"):
        with pytest.raises(ExportError, match="do not match its SHA-256"):
            export_version(version, dest)
        assert not dest.exists()


def test_an_export_stops_on_a_frame_whose_file_is_gone_and_leaves_nothing(version, tmp_path):
    frame = Frame.objects.filter(quality=Frame.Quality.ELIGIBLE).order_by("id").last()
    default_storage.delete(frame.file.name)
    for dest in (tmp_path / "out", tmp_path / "out.zip"):
        with pytest.raises(ExportError, match=f"frame {frame.uid}: file unreadable"):
            export_version(version, dest)
        assert not dest.exists()


def test_concurrent_exports_are_byte_identical(version):
    def export() -> bytes:
        buffer = io.BytesIO()
        export_version(DatasetVersion.objects.get(pk=version.pk), buffer)
        return buffer.getvalue()

    archives = run_at_once(export, threads=3)
    assert len(set(archives)) == 1


# -- malicious and broken archives ------------------------------------------------------------


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _rezip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    out = path.with_name("bad.zip")
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return out


def _symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = 0o120777 << 16  # a symbolic link, as Info-ZIP stores one
    return info


def _with_meta(members: dict[str, bytes], **changes: object) -> dict[str, bytes]:
    meta = json.loads(members["dataset.json"]) | changes
    return members | {"dataset.json": json.dumps(meta).encode()}


def _retouched_manifest(members: dict[str, bytes]) -> dict[str, bytes]:
    """Move a railcar to another split and fix the manifest's SHA-256: only the content hash
    can still tell."""
    lines = members["manifest.jsonl"].splitlines()
    first = json.loads(lines[0])
    first["split"] = "test" if first["split"] != "test" else "train"
    manifest = b"\n".join([json.dumps(first).encode(), *lines[1:]]) + b"\n"
    meta = json.loads(members["dataset.json"])
    meta["files"]["manifest.jsonl"] = hashlib.sha256(manifest).hexdigest()
    return members | {"manifest.jsonl": manifest, "dataset.json": json.dumps(meta).encode()}


def _first_frame(members: dict[str, bytes]) -> str:
    return sorted(n for n in members if n.startswith("frames/"))[0]


BOMB = "frames/" + "0" * 64 + ".jpg"
CASES: dict[str, tuple[Callable[[dict[str, bytes]], list], str]] = {
    "zip slip": (lambda m: [*m.items(), ("frames/../../evil.txt", b"x")], "unexpected member"),
    "absolute path": (lambda m: [*m.items(), ("/etc/cron.d/evil", b"x")], "unexpected member"),
    "backslash path": (lambda m: [*m.items(), ("frames\\..\\x.jpg", b"x")], "unexpected member"),
    "stray file": (lambda m: [*m.items(), ("notes.txt", b"x")], "unexpected member"),
    "symlink": (
        lambda m: [*m.items(), (_symlink_info("frames/" + "a" * 64 + ".jpg"), b"/etc/passwd")],
        "symbolic link",
    ),
    "duplicate name": (lambda m: [*m.items(), ("dataset.json", b"{}")], "duplicate member"),
    "zip bomb": (lambda m: [*m.items(), (BOMB, bytes(30 * 1024 * 1024))], "expands more than"),
    "wrong JSON": (lambda m: [*(m | {"dataset.json": b"{not json"}).items()], "not valid JSON"),
    "wrong format": (
        lambda m: [*_with_meta(m, format="something else").items()],
        "not a scrapannot-dataset export",
    ),
    "manifest edited": (
        lambda m: [*(m | {"manifest.jsonl": m["manifest.jsonl"] + b"{}\n"}).items()],
        "SHA-256 differs",
    ),
    "manifest retouched with its hash": (
        lambda m: [*_retouched_manifest(m).items()],
        "differs from its content hash",
    ),
    "missing frame": (
        lambda m: [(n, d) for n, d in m.items() if n != _first_frame(m)],
        "is missing",
    ),
    "frame bytes changed": (
        lambda m: [*(m | {_first_frame(m): m[_first_frame(m)] + b"x"}).items()],
        "bytes differ from its SHA-256",
    ),
    "missing manifest": (
        lambda m: [(n, d) for n, d in m.items() if n != "manifest.jsonl"],
        "manifest.jsonl is missing",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malicious_or_broken_archive_is_refused_with_a_clear_error(version, tmp_path, case):
    good = tmp_path / "good.zip"
    export_version(version, good)
    build, message = CASES[case]
    bad = _rezip(good, build(_members(good)))
    with pytest.raises(DatasetImportError, match=message):
        import_version(bad)


@pytest.mark.parametrize(
    "damage",
    [lambda b: b[: len(b) // 2], lambda b: b[:-30], lambda b: os.urandom(4096), lambda b: b""],
)
def test_a_corrupt_or_truncated_zip_is_refused(version, tmp_path, damage):
    good = tmp_path / "good.zip"
    export_version(version, good)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(damage(good.read_bytes()))
    with pytest.raises(DatasetImportError, match="not a readable zip|corrupt|missing"):
        import_version(bad)


def test_members_above_the_limits_are_refused_before_they_are_read(version, tmp_path):
    good = tmp_path / "good.zip"
    export_version(version, good)
    with pytest.raises(DatasetImportError, match="larger than 100 bytes"):
        import_version(good, limits=ImportLimits(max_json_bytes=100))
    with pytest.raises(DatasetImportError, match="more than 3 members"):
        import_version(good, limits=ImportLimits(max_members=3))
    with pytest.raises(DatasetImportError, match="bytes in all"):
        import_version(good, limits=ImportLimits(max_total_bytes=1000))


def test_a_folder_with_a_symbolic_link_is_refused(version, tmp_path):
    folder = tmp_path / "out"
    export_version(version, folder)
    frame = sorted((folder / "frames").iterdir())[0]
    frame.unlink()
    frame.symlink_to("/etc/passwd")
    with pytest.raises(DatasetImportError, match="symbolic link"):
        import_version(folder)
    shutil.rmtree(folder)
    folder.symlink_to(tmp_path)
    with pytest.raises(DatasetImportError, match="not a directory"):
        import_version(folder)


def test_the_commands_export_and_compare_an_archive_with_the_local_versions(
    version, tmp_path, capsys
):
    dest = tmp_path / "v1.zip"
    call_command("export_dataset", str(version.number), str(dest))
    with pytest.raises(CommandError, match="exists"):
        call_command("export_dataset", str(version.number), str(dest))
    with pytest.raises(CommandError, match="no dataset version 9"):
        call_command("export_dataset", "9", str(tmp_path / "v9.zip"))
    # Only the export that was written is on record, whichever way it was taken.
    (event,) = AuditEvent.objects.filter(action="dataset.exported")
    assert event.actor_label == "command:export_dataset"
    assert event.payload == {"number": version.number, "real_ids": False, "to": "zip"}
    call_command("import_dataset", str(dest))
    out = capsys.readouterr().out
    assert "valid export of v1: 2 railcars" in out and "identical to local v1" in out

    railcar = FinalLabel.objects.filter(superseded_at=None).order_by("id").first().railcar
    relabel(railcar, "7.7", "cast iron")
    freeze_version(actor=None)
    call_command("import_dataset", str(dest))
    out = capsys.readouterr().out
    assert "differs from local v2: 0 added, 0 removed, 1 relabeled, 0 split changes" in out

    broken = tmp_path / "broken.zip"
    broken.write_bytes(dest.read_bytes()[:500])
    with pytest.raises(CommandError, match="invalid dataset export"):
        call_command("import_dataset", str(broken))
