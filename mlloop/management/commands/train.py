"""python manage.py train --dataset N [--backbone test_resnet --epochs 2 ...] [--promote]

Registers a model version and trains it here, in this process (the same code path as the
worker's task), then prints its metrics. The promotion rule applies as after any run;
--promote also promotes the model by hand if the rule did not.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from mlloop import registry, runs
from mlloop.models import DatasetVersion, ModelVersion

OPTIONS = {
    "backbone": str,
    "pretrained_weights": str,
    "image_size": int,
    "bag_size": int,
    "lam": float,
    "epochs": int,
    "lr": float,
    "batch_size": int,
    "dropout": float,
    "ensemble": int,
    "seed": int,
    "device": str,
}


class Command(BaseCommand):
    help = "Train the attention-MIL model on a frozen dataset version and register it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", type=int, help="dataset version number (default: newest)")
        for name, kind in OPTIONS.items():
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
        parser.add_argument("--promote", action="store_true", help="promote if it succeeds")

    def handle(self, *args: Any, **options: Any) -> None:
        versions = DatasetVersion.objects.order_by("-number")
        if options["dataset"] is not None:
            versions = versions.filter(number=options["dataset"])
        dataset = versions.first()
        if dataset is None:
            raise CommandError(
                f"no dataset version {options['dataset'] or ''} (freeze one first)".replace(
                    "  ", " "
                )
            )
        overrides = {k: options[k] for k in OPTIONS if options.get(k) is not None}
        try:
            run = registry.create_run(
                dataset_version=dataset, actor=None, overrides=overrides, enqueue=False
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"model v{run.number} on dataset v{dataset.number}: training")
        run = runs.train_model_version(run.pk)
        if run.status != ModelVersion.Status.SUCCEEDED:
            raise CommandError(f"model v{run.number} failed:\n{run.log}")
        if options["promote"] and not run.is_production:
            registry.promote(model_version=run, actor=None, reason="manage.py train --promote")
            run.refresh_from_db()
        for split in ("train", "val", "test"):
            shown = {k: v for k, v in run.metrics[split].items() if k not in ("per_class",)}
            self.stdout.write(f"{split}: {json.dumps(shown)}")
        self.stdout.write(
            f"model v{run.number}: {'in production' if run.is_production else 'not promoted'} "
            f"({run.metrics.get('promotion', {}).get('reason', '')})"
        )
