from argparse import ArgumentParser
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from labeling import lines as line_rights
from labeling.lines import PERMISSIONS, POST_UNLOADINGS
from labeling.models import Line


class Command(BaseCommand):
    help = (
        "Grant (or --revoke) a user a permission on lines: post_unloadings for a plant system's "
        "account, operate_line for an operator or senior inspector. Audited."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("lines", nargs="+", metavar="LINE")
        parser.add_argument("--permission", choices=PERMISSIONS, default=POST_UNLOADINGS)
        parser.add_argument("--revoke", action="store_true")
        parser.add_argument(
            "--create", action="store_true", help="create the lines that do not exist yet"
        )

    def handle(
        self,
        *args: Any,
        username: str,
        lines: list[str],
        permission: str,
        revoke: bool,
        create: bool,
        **options: Any,
    ) -> None:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        found = {line.name: line for line in Line.objects.filter(name__in=lines)}
        missing = [name for name in lines if name not in found]
        if missing and not create:
            raise CommandError(f"no such lines: {', '.join(missing)} (add --create)")
        for name in missing:
            found[name] = Line.objects.create(name=name)
        change = line_rights.revoke if revoke else line_rights.grant
        for name in lines:
            change(actor=None, user=user, line=found[name], permission=permission)
            verb = "revoked" if revoke else "granted"
            self.stdout.write(f"{verb} {permission} on {name} for {username}")
