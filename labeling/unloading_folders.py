"""Unloading folders on disk: `unloading.json` beside its frames, ingested the way the API's
unloadings are. `manage.py ingest` and the demo read them through here."""

import json
from pathlib import Path

from labeling.ingest import IngestResult, ingest_unloading
from labeling.manifest import UnloadingManifestSerializer

MANIFEST_NAME = "unloading.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
ACTOR_LABEL = "command:ingest"


class UnloadingFolderError(ValueError):
    """The folder holds no readable, valid manifest; nothing was written."""


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


def ingest_folder(*, folder: Path, actor_label: str = ACTOR_LABEL) -> IngestResult:
    """Ingest one unloading folder. Raises UnloadingFolderError for a missing, oversized,
    unparsable or invalid manifest, and UnloadingConflict as the API's ingest does."""
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise UnloadingFolderError(f"no {MANIFEST_NAME} in {folder}")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise UnloadingFolderError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(manifest_path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise UnloadingFolderError(f"{MANIFEST_NAME} is not valid JSON: {exc!r:.200}") from exc
    serializer = UnloadingManifestSerializer(data=data)
    if not serializer.is_valid():
        raise UnloadingFolderError(f"{MANIFEST_NAME} is invalid: {json.dumps(serializer.errors)}")
    manifest = serializer.validated_data
    sources = disk_sources(folder, [f["file"] for f in manifest["frames"]])
    return ingest_unloading(manifest=manifest, sources=sources, actor_label=actor_label)


def describe(folder: Path, result: IngestResult) -> str:
    """One line about an ingested folder, as `manage.py ingest` prints it."""
    verb = "ingested" if result.created else "already ingested"
    rejected = ", ".join(f"{r['file']}: {r['reason']}" for r in result.rejected)
    return (
        f"{folder}: {verb} railcar {result.railcar.real_id}: {result.frames} frames "
        f"({result.eligible} decodable), {result.layers} layers"
        + (f"; rejected {rejected}" if rejected else "")
    )
