"""`manage.py simulate_ratings`: simulated raters work the real pool, for a demo or a load test.

Each simulated rater is a real annotator account (`sim-rater-01`, ...) that takes railcars with
`labeling.pool.next_assignment` and rates them with `labeling.annotation.submit_rating`, the
path a browser takes, so routing, double-blind leases, aggregation and adjudication all run as
they do for people. The readings come from `operations.simulation.RaterPanel` (offsets and
scale widths as in seed 000), applied to the truth of synthetic railcars (`labels.jsonl` written
by `manage.py synth`) or, without it, to a contamination drawn like the generator's.

Never run this on a production database: it creates accounts and ratings. It refuses to run
unless --i-know-this-is-not-production is given or the database is the demo's SQLite file.
"""

import json
from argparse import ArgumentParser
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from labeling import annotation, pool
from labeling.models import Railcar
from operations.simulation import RaterPanel
from operations.synth import sample_contamination_pct
from operations.synth_scrap import GRADES
from scrapannot.roles import Role

PREFIX = "sim-rater-"


def read_truth(path: Path | None) -> dict[str, tuple[float, str]]:
    """{plant railcar id: (contamination %, grade)} from a synth labels.jsonl."""
    if path is None:
        return {}
    truth = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            truth[str(record["railcar"])] = (
                float(record["contamination_pct_exact"]),
                str(record["grade"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{path}:{number}: not a labels.jsonl record ({exc})") from exc
    return truth


def sim_raters(count: int) -> list[User]:
    group, _ = Group.objects.get_or_create(name=Role.ANNOTATOR.value)
    users = []
    for i in range(1, count + 1):
        user, created = User.objects.get_or_create(username=f"{PREFIX}{i:02d}")
        if created:
            user.set_unusable_password()  # nobody signs in as a simulated rater
            user.save()
        user.groups.add(group)
        users.append(user)
    return users


class Command(BaseCommand):
    help = "Let simulated raters rate railcars from the pool through the real annotation path."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--railcars", type=int, default=20, help="how many to finish rating")
        parser.add_argument("--raters", type=int, default=8, help="size of the simulated panel")
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--labels", type=Path, default=None, help="synth labels.jsonl")
        parser.add_argument("--i-know-this-is-not-production", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["railcars"] < 1 or not 3 <= options["raters"] <= 50:
            raise CommandError("--railcars must be at least 1 and --raters between 3 and 50")
        if connection.vendor != "sqlite" and not options["i_know_this_is_not_production"]:
            raise CommandError(
                "this creates accounts and ratings: pass --i-know-this-is-not-production"
            )
        truth = read_truth(options["labels"])
        rng = np.random.default_rng(options["seed"])
        panel = RaterPanel.draw(rng, options["raters"])
        users = sim_raters(len(panel))
        weights = np.array([r.workload for r in panel.raters])
        target = options["railcars"]
        done: set[int] = set()
        idle = 0
        while len(done) < target and idle < 3 * len(users):
            k = int(rng.choice(len(users), p=weights / weights.sum()))
            lease = pool.next_assignment(annotator=users[k])
            if lease is None:
                idle += 1
                continue
            idle = 0
            railcar = Railcar.objects.get(pk=lease.railcar_id)
            pct, grade = truth.get(railcar.real_id) or (
                sample_contamination_pct(rng),
                GRADES[int(rng.integers(len(GRADES)))],
            )
            value, read_grade = panel.rate(pct, grade, k, rng, borderline=float(rng.beta(0.6, 3)))
            annotation.submit_rating(
                uid=lease.uid,
                annotator=users[k],
                contamination_pct=Decimal(str(value)),
                grade=read_grade,
                seconds_spent=int(rng.gamma(6.0, 15.0)) + 10,
            )
            railcar.refresh_from_db(fields=["status"])
            if railcar.status != Railcar.Status.IN_POOL:
                done.add(railcar.pk)
        statuses = Counter(Railcar.objects.filter(pk__in=done).values_list("status", flat=True))
        self.stdout.write(
            f"{len(done)} railcars fully rated by {len(users)} simulated raters: "
            f"{statuses[Railcar.Status.LABELED]} with a final label, "
            f"{statuses[Railcar.Status.IN_ADJUDICATION]} waiting for adjudication, "
            f"{statuses[Railcar.Status.RATED]} waiting for aggregation by a worker."
        )
