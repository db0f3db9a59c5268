from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mlloop.datasets import DatasetError, freeze_version
from scrapannot.roles import Role, has_role


class Command(BaseCommand):
    help = "Freeze the current final labels into a new dataset version."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--name", default="")
        parser.add_argument("--notes", default="")
        parser.add_argument("--user", default="", help="the admin to record as its author")

    def handle(self, *args: Any, name: str, notes: str, user: str, **options: Any) -> None:
        if len(name) > 120:
            raise CommandError("--name: at most 120 characters")
        actor = None
        if user:
            actor = get_user_model().objects.filter(username=user).first()
            if actor is None or not has_role(actor, Role.ADMIN):
                raise CommandError(f"--user: no admin named {user!r}")
        try:
            version = freeze_version(
                actor=actor, name=name, notes=notes, actor_label=None if actor else "command"
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from exc
        splits = ", ".join(f"{k} {v}" for k, v in version.histograms["split"].items())
        self.stdout.write(
            f"froze v{version.number}: {version.railcar_count} railcars ({splits}), "
            f"content hash {version.content_hash}"
        )
