"""Validate an exported dataset and compare it with this installation's versions (read only).

An export is the hand-over to training code elsewhere; reading one back here checks that it is
intact (every hash, the schema, the masks) and says how it relates to the local versions: the one
with the same content hash, or else what differs from the latest. It loads nothing into the
database: the railcars, frames and labels it describes came from this database in the first
place, and a second copy of them would be a second truth.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mlloop.dataset_import import DatasetImportError, import_version
from mlloop.datasets import diff, version_rows
from mlloop.models import DatasetVersion


class Command(BaseCommand):
    help = "Validate an exported dataset (folder or .zip) and diff it against the local versions."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, path: Path, **options: Any) -> None:
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        try:
            dataset = import_version(path)
        except DatasetImportError as exc:
            raise CommandError(f"{path}: invalid dataset export: {exc}") from exc
        with dataset:
            meta = dataset.meta
            rows = dataset.rows()
            splits = {}
            for row in rows.values():
                splits[row.split] = splits.get(row.split, 0) + 1
            self.stdout.write(
                f"valid export of v{meta['number']}: {len(rows)} railcars "
                f"({', '.join(f'{k} {v}' for k, v in sorted(splits.items()))}), "
                f"{len(dataset.coco['images'])} frames, {len(dataset.coco['annotations'])} masks, "
                f"content hash {meta['content_hash']}"
            )
            same = DatasetVersion.objects.filter(content_hash=meta["content_hash"]).first()
            if same is not None:
                self.stdout.write(f"identical to local v{same.number}")
            latest = DatasetVersion.objects.order_by("-number").first()
            if latest is None:
                self.stdout.write("no local dataset version to compare with")
                return
            if same is not None and same.content_hash == latest.content_hash:
                return
            changes = diff(version_rows(latest), rows)
            self.stdout.write(
                f"differs from local v{latest.number}: {len(changes.added)} added, "
                f"{len(changes.removed)} removed, {len(changes.relabeled)} relabeled, "
                f"{len(changes.split_changes)} split changes"
            )
