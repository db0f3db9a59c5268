import csv
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling import gold
from labeling.models import GoldSource, Grade

COLUMNS = ("railcar", "contamination_pct", "grade", "source")


class Command(BaseCommand):
    help = (
        "Import gold truth from a CSV file with columns railcar (id, uid or plant id), "
        "contamination_pct, grade, source (lab_analysis, hand_sorted, senior_panel) and an "
        "optional reference; all rows or none."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("csv_file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        truths = []
        with options["csv_file"].open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = set(COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise CommandError(f"missing columns: {', '.join(sorted(missing))}")
            for line, row in enumerate(reader, start=2):
                truths.append(_truth(row, line))
        try:
            rows = gold.import_gold(truths=truths, actor=None, actor_label="command:import_gold")
        except gold.UnknownRailcar as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{len(rows)} gold railcars imported.")


def _truth(row: dict[str, str], line: int) -> gold.GoldTruth:
    try:
        pct = Decimal(row["contamination_pct"].strip()).quantize(Decimal("0.1"))
    except InvalidOperation as exc:
        raise CommandError(f"line {line}: contamination_pct is not a number") from exc
    if not 0 <= pct <= 100:
        raise CommandError(f"line {line}: contamination_pct is not 0-100")
    if row["grade"].strip() not in Grade.values:
        raise CommandError(f"line {line}: grade is not one of {', '.join(Grade.values)}")
    if row["source"].strip() not in GoldSource.values:
        raise CommandError(f"line {line}: source is not one of {', '.join(GoldSource.values)}")
    return gold.GoldTruth(
        railcar=row["railcar"].strip(),
        contamination_pct=pct,
        grade=row["grade"].strip(),
        source=row["source"].strip(),
        reference=(row.get("reference") or "").strip(),
    )
