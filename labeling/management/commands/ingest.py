from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from labeling.ingest import UnloadingConflict
from labeling.unloading_folders import UnloadingFolderError, describe, ingest_folder


class Command(BaseCommand):
    help = "Ingest unloading folders (DIR/unloading.json plus its frames)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")

    def handle(self, *args: Any, dirs: list[Path], **options: Any) -> None:
        failures = 0
        for folder in dirs:
            try:
                self.stdout.write(describe(folder, ingest_folder(folder=folder)))
            except (UnloadingFolderError, UnloadingConflict) as exc:
                failures += 1
                self.stderr.write(f"{folder}: {exc}")
        if failures:
            raise CommandError(f"{failures} of {len(dirs)} unloadings not ingested")
