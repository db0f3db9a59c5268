"""python manage.py score [--model N]: score unlabeled railcars and set their pool priority
(the scheduled task's code path, run here)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mlloop import scoring
from mlloop.artifacts import ArtifactError
from mlloop.models import ModelVersion


class Command(BaseCommand):
    help = "Score railcars without a final label with the production model (or --model N)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", type=int, help="model version number (default: production)")

    def handle(self, *args: Any, **options: Any) -> None:
        model_version = None
        if options["model"] is not None:
            model_version = ModelVersion.objects.filter(
                number=options["model"], status=ModelVersion.Status.SUCCEEDED
            ).first()
            if model_version is None:
                raise CommandError(f"no successfully trained model v{options['model']}")
        try:
            report = scoring.score_railcars(model_version=model_version)
        except ArtifactError as exc:
            raise CommandError(str(exc)) from exc
        if report.model_number is None:
            raise CommandError(f"nothing scored: {report.note}")
        self.stdout.write(
            f"model v{report.model_number}: {report.scored} railcars scored, "
            f"{len(report.skipped)} without readable frames"
        )
