"""python manage.py grant_line LINE USER [--post] [--revoke] [--create]

Grant (or with --revoke take back) a line to a user: by default `operate_line` (an operator or a
senior inspector sees and acts on the line's unloadings), with --post `post_unloadings` (a plant
system's account may post the line's unloadings). Audited like a grant in the Django admin."""

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from labeling import lines
from labeling.models import Line


class Command(BaseCommand):
    help = "Grant a line to a user (operate_line, or post_unloadings with --post)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("line", help="the line's name, as unloadings name it")
        parser.add_argument("username")
        parser.add_argument(
            "--post", action="store_true", help="post_unloadings (a plant system's token)"
        )
        parser.add_argument("--revoke", action="store_true", help="take the permission back")
        parser.add_argument("--create", action="store_true", help="create the line if missing")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"no user {options['username']!r}")
        name = options["line"]
        if options["create"]:
            line, _ = Line.objects.get_or_create(name=name)
        else:
            line = Line.objects.filter(name=name).first()
            if line is None:
                raise CommandError(f"no line {name!r} (--create makes it)")
        permission = lines.POST_UNLOADINGS if options["post"] else lines.OPERATE_LINE
        change = lines.revoke if options["revoke"] else lines.grant
        change(actor=None, user=user, line=line, permission=permission)
        verb = "revoked from" if options["revoke"] else "granted to"
        self.stdout.write(f"{permission} on line {line.name} {verb} {user.get_username()}")
