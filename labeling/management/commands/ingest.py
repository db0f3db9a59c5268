import json
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from labeling.ingest import UnloadingConflict, ingest_unloading
from labeling.manifest import UnloadingManifestSerializer

MANIFEST_NAME = "unloading.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


class DiskFrame:
    """A frame file beside the manifest. Symbolic links are not followed: a manifest must not
    be able to pull in files from elsewhere on the machine."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size

    def read(self) -> bytes:
        return self.path.read_bytes()


def disk_sources(folder: Path, names: list[str]) -> dict[str, DiskFrame]:
    sources = {}
    for name in names:
        path = folder / name
        if path.is_file() and not path.is_symlink():
            sources[name] = DiskFrame(path)
    return sources


class Command(BaseCommand):
    help = "Ingest unloading folders (DIR/unloading.json plus its frames)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR")

    def handle(self, *args: Any, dirs: list[Path], **options: Any) -> None:
        failures = 0
        for folder in dirs:
            try:
                self.stdout.write(self.ingest_folder(folder))
            except CommandError as exc:
                failures += 1
                self.stderr.write(f"{folder}: {exc}")
        if failures:
            raise CommandError(f"{failures} of {len(dirs)} unloadings not ingested")

    def ingest_folder(self, folder: Path) -> str:
        manifest_path = folder / MANIFEST_NAME
        if not manifest_path.is_file():
            raise CommandError(f"no {MANIFEST_NAME} in {folder}")
        if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
            raise CommandError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
        try:
            data = json.loads(manifest_path.read_bytes())
        except (ValueError, RecursionError) as exc:
            raise CommandError(f"{MANIFEST_NAME} is not valid JSON: {exc!r:.200}") from exc
        serializer = UnloadingManifestSerializer(data=data)
        if not serializer.is_valid():
            raise CommandError(f"{MANIFEST_NAME} is invalid: {json.dumps(serializer.errors)}")
        manifest = serializer.validated_data
        sources = disk_sources(folder, [f["file"] for f in manifest["frames"]])
        try:
            result = ingest_unloading(
                manifest=manifest, sources=sources, actor_label="command:ingest"
            )
        except UnloadingConflict as exc:
            raise CommandError(str(exc)) from exc
        verb = "ingested" if result.created else "already ingested"
        rejected = ", ".join(f"{r['file']}: {r['reason']}" for r in result.rejected)
        return (
            f"{folder}: {verb} railcar {result.railcar.real_id}: {result.frames} frames "
            f"({result.eligible} decodable), {result.layers} layers"
            + (f"; rejected {rejected}" if rejected else "")
        )
