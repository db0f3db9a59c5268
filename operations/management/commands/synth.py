from argparse import ArgumentParser, ArgumentTypeError
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from operations.synth import LABELS_FILE, write_unloadings


def _share(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ArgumentTypeError("must be within [0, 1]")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ArgumentTypeError("must be at least 1")
    return value


def _layers(text: str) -> tuple[int, int]:
    """`5` or `4-6`."""
    low, _, high = text.partition("-")
    bounds = (_positive(low), _positive(high or low))
    if bounds[0] > bounds[1]:
        raise ArgumentTypeError("expected N or MIN-MAX with MIN <= MAX")
    return bounds


class Command(BaseCommand):
    help = (
        "Write synthetic railcar unloadings (folders for `ingest`) and their true labels, "
        f"which go to DIR/{LABELS_FILE} and never into an unloading folder."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("out_dir", type=Path, metavar="DIR")
        parser.add_argument("--railcars", type=_positive, required=True)
        parser.add_argument("--seed", type=int, required=True)
        parser.add_argument(
            "--defect-share",
            type=_share,
            default=0.1,
            help="share of frames with a defect (default 0.1)",
        )
        parser.add_argument("--width", type=_positive, default=1920)
        parser.add_argument("--height", type=_positive, default=1080)
        parser.add_argument("--frames-per-layer", type=_positive, default=5)
        parser.add_argument(
            "--layers",
            type=_layers,
            default=(4, 6),
            help="layers (magnet grabs) per railcar: N or MIN-MAX (default 4-6)",
        )
        parser.add_argument(
            "--named-layers",
            action="store_true",
            help="write `layer` for every frame instead of boxes",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            records = write_unloadings(
                out_dir=options["out_dir"],
                railcars=options["railcars"],
                seed=options["seed"],
                defect_share=options["defect_share"],
                width=options["width"],
                height=options["height"],
                layers=options["layers"],
                frames_per_layer=options["frames_per_layer"],
                named_layers=options["named_layers"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        frames = sum(len(r.files) for r in records)
        self.stdout.write(
            f"wrote {len(records)} unloadings ({frames} frames) and "
            f"{options['out_dir'] / LABELS_FILE}"
        )
