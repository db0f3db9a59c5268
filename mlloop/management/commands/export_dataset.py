from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from mlloop.export import ExportError, export_version
from mlloop.models import DatasetVersion


class Command(BaseCommand):
    help = "Export a dataset version to a folder, or to a zip archive when DEST ends in .zip."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("number", type=int)
        parser.add_argument("dest", type=Path)
        parser.add_argument(
            "--real-ids", action="store_true", help="include the plant's railcar ids (admins)"
        )

    def handle(self, *args: Any, number: int, dest: Path, real_ids: bool, **options: Any) -> None:
        version = DatasetVersion.objects.filter(number=number).first()
        if version is None:
            raise CommandError(f"no dataset version {number}")
        if dest.suffix == ".zip" and dest.exists():
            raise CommandError(f"{dest} exists")
        try:
            export_version(
                version, dest, include_real_ids=real_ids, actor_label="command:export_dataset"
            )
        except (ExportError, OSError) as exc:
            raise CommandError(f"export failed, nothing written: {exc}") from exc
        self.stdout.write(
            f"exported v{version.number} ({version.railcar_count} railcars) to {dest}"
        )
