"""`manage.py simulate_ratings`: simulated raters work the real pool (operations.pool_simulation),
for a demo or a load test.

Never run this on a production database: it creates accounts and ratings. It refuses to run
unless --i-know-this-is-not-production is given or the database is the demo's SQLite file.
"""

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from operations.pool_simulation import (
    DEFAULT_RATERS,
    DEFAULT_SEED,
    TruthFileError,
    rate_from_pool,
    read_truth,
)


class Command(BaseCommand):
    help = "Let simulated raters rate railcars from the pool through the real annotation path."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--railcars", type=int, default=20, help="how many to finish rating")
        parser.add_argument(
            "--raters", type=int, default=DEFAULT_RATERS, help="size of the simulated panel"
        )
        parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
        parser.add_argument("--labels", type=Path, default=None, help="synth labels.jsonl")
        parser.add_argument("--i-know-this-is-not-production", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["railcars"] < 1 or not 3 <= options["raters"] <= 50:
            raise CommandError("--railcars must be at least 1 and --raters between 3 and 50")
        if connection.vendor != "sqlite" and not options["i_know_this_is_not_production"]:
            raise CommandError(
                "this creates accounts and ratings: pass --i-know-this-is-not-production"
            )
        try:
            truth = read_truth(options["labels"])
        except TruthFileError as exc:
            raise CommandError(str(exc)) from exc
        report = rate_from_pool(
            railcars=options["railcars"],
            raters=options["raters"],
            seed=options["seed"],
            truth=truth,
        )
        self.stdout.write(report.summary())
