"""`manage.py demo`: a first run on a laptop, from an empty database to a served app.

Migrates, creates the demo accounts (`operations.demo`), synthesizes railcars
(`operations.synth`), ingests their folders as `manage.py ingest` does (the code path plant
unloadings take), lets simulated raters rate some through the pool
(`operations.pool_simulation`), runs the learning loop once (`operations.demo_loop`), then
serves the app with Django's development server.
Production serves with gunicorn instead (README). Every step is idempotent, so running it again
just serves what is there.
"""

import logging
from argparse import ArgumentParser
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from labeling.ingest import UnloadingConflict
from labeling.unloading_folders import (
    MANIFEST_NAME,
    UnloadingFolderError,
    describe,
    ingest_folder,
)
from operations.demo import DEMO_PASSWORD, DemoUser, ensure_demo_users
from operations.demo_loop import close_the_loop
from operations.pool_simulation import (
    TruthFileError,
    rate_from_pool,
    read_truth,
    simulated_raters_exist,
)
from operations.synth import LABELS_FILE, write_unloadings
from scrapannot import background
from scrapannot.audit import seal_pending, verify_chain


def demo_url(addrport: str) -> str:
    host, _, port = addrport.rpartition(":")
    return f"http://{host or '127.0.0.1'}:{port}/"


def unloading_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("unloading-*") if (p / MANIFEST_NAME).is_file())


class Command(BaseCommand):
    help = (
        "Set up a demo (migrate, demo users, synthetic railcars, ingest) and serve it with "
        "Django's development server."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--railcars", type=int, default=36, help="how many to synthesize")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--width", type=int, default=1280, help="frame width, pixels")
        parser.add_argument("--height", type=int, default=720, help="frame height, pixels")
        parser.add_argument(
            "--out",
            type=Path,
            default=None,
            help="folder for the synthetic unloadings (default: VAR_DIR/demo-unloadings)",
        )
        parser.add_argument(
            "--simulate",
            type=int,
            default=24,
            help="railcars simulated raters rate first, so that adjudication, agreement and "
            "datasets have something to show (0: none)",
        )
        parser.add_argument(
            "--no-learning",
            action="store_true",
            help="skip the learning loop's first pass (calibrate, freeze, train, promote, score)",
        )
        parser.add_argument("--addrport", default="127.0.0.1:8000")
        parser.add_argument("--no-serve", action="store_true", help="set everything up, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["railcars"] < 1:
            raise CommandError("--railcars must be at least 1")
        out: Path = options["out"] or Path(settings.VAR_DIR) / "demo-unloadings"
        self.verbosity: int = options["verbosity"]

        self.step("Migrating the database")
        call_command("migrate", interactive=False, verbosity=0)

        self.step("Creating demo users")
        users = ensure_demo_users()

        folders = self.synthesize(out, options)
        self.ingest(folders)
        self.simulate(out, options["simulate"])
        if not options["no_learning"]:
            self.learn()

        seal_pending()  # inline already on SQLite; on PostgreSQL, what beat would do
        report = verify_chain()
        self.stdout.write(
            f"Audit trail: {report.events} events, chain {'ok' if report.ok else 'BROKEN'}."
        )
        self.print_accounts(users, url=demo_url(options["addrport"]))

        if options["no_serve"]:
            return
        self.stdout.write(
            "Serving with Django's development server (production runs gunicorn). "
            "Ctrl-C stops it.\n"
        )
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # Without a broker, tasks the pages start (a training run, a scheduled job run now)
            # go to the app's own background threads, so each page answers at once.
            background.start()
        # insecure_serving: static files still load when someone runs the demo with DEBUG=0.
        call_command("runserver", options["addrport"], use_reloader=False, insecure_serving=True)

    def step(self, text: str) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"{text} ..."))

    def synthesize(self, out: Path, options: dict[str, Any]) -> list[Path]:
        # The labels file is written last: its presence means the folders are complete.
        if (out / LABELS_FILE).is_file():
            folders = unloading_folders(out)
            self.step(f"Reusing {len(folders)} synthetic unloadings in {out} (delete it to redo)")
            return folders
        self.step(
            f"Synthesizing {options['railcars']} railcars "
            f"({options['width']}x{options['height']}) into {out}"
        )
        try:
            write_unloadings(
                out_dir=out,
                railcars=options["railcars"],
                seed=options["seed"],
                width=options["width"],
                height=options["height"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        return unloading_folders(out)

    def ingest(self, folders: list[Path]) -> None:
        self.step(f"Ingesting {len(folders)} unloadings")
        created = failures = 0
        with self.quiet_tasks():
            for folder in folders:
                try:
                    result = ingest_folder(folder=folder)
                except (UnloadingFolderError, UnloadingConflict) as exc:
                    failures += 1
                    self.stderr.write(f"{folder}: {exc}")
                    continue
                created += result.created
                if self.verbosity > 1:
                    self.stdout.write(describe(folder, result))
        if failures:
            raise CommandError(f"{failures} of {len(folders)} unloadings not ingested")
        self.stdout.write(f"{created} ingested now, {len(folders) - created} were already there.")

    def simulate(self, out: Path, railcars: int) -> None:
        if railcars < 1 or simulated_raters_exist():
            return
        self.step(f"Simulated raters rate {railcars} railcars (the rest is left for you)")
        try:
            truth = read_truth(out / LABELS_FILE)
        except TruthFileError as exc:
            raise CommandError(str(exc)) from exc
        with self.quiet_tasks():
            report = rate_from_pool(railcars=railcars, truth=truth)
        self.stdout.write(report.summary())

    def learn(self) -> None:
        self.step("The learning loop once: calibrate raters, freeze, train, promote, score")
        with self.quiet_tasks("mlloop.runs", "mlloop.scoring"):
            report = close_the_loop()
        self.stdout.write(report.summary())

    @contextmanager
    def quiet_tasks(self, *names: str) -> Iterator[None]:
        """Without a broker, tasks run in-process and Celery logs one line per task (and a
        training run one per epoch, mlloop.runs)."""
        loggers = [logging.getLogger(name) for name in ("celery.app.trace", *names)]
        levels = [each.level for each in loggers]
        if self.verbosity < 2:
            for each in loggers:
                each.setLevel(logging.WARNING)
        try:
            yield
        finally:
            for each, level in zip(loggers, levels, strict=True):
                each.setLevel(level)

    def print_accounts(self, users: list[DemoUser], *, url: str) -> None:
        rows = [("user", "role", "signs in with")]
        for user in users:
            how = f"API token {user.api_token}" if user.api_token else f"password {DEMO_PASSWORD}"
            rows.append((user.username, user.role.value, how))
        widths = [max(len(row[i]) for row in rows) for i in range(2)]
        self.stdout.write("")
        for n, (name, role, how) in enumerate(rows):
            line = f"  {name:<{widths[0]}}  {role:<{widths[1]}}  {how}"
            self.stdout.write(self.style.MIGRATE_LABEL(line) if n == 0 else line)
        self.stdout.write(f"\nOpen {url} and sign in as one of them.")
        self.stdout.write(f"Plant systems post unloadings to {url}api/v1/unloadings/ .\n")
