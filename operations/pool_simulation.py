"""Simulated raters work the real pool, for a demo or a load test.

Each simulated rater is a real annotator account (`sim-rater-01`, ...) that takes railcars with
`labeling.pool.next_assignment` and rates them with `labeling.annotation.submit_rating`, the
path a browser takes, so routing, double-blind leases, aggregation and adjudication all run as
they do for people. The readings come from `operations.simulation.RaterPanel` (offsets and
scale widths as in seed 000), applied to the truth of synthetic railcars (`labels.jsonl` written
by `operations.synth`) or, without it, to a contamination drawn like the generator's.

It creates accounts and ratings: never on a production database (`manage.py simulate_ratings`
refuses one).
"""

import json
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from django.contrib.auth.models import Group, User

from labeling import annotation, pool
from labeling.models import Railcar
from operations.simulation import RaterPanel
from operations.synth import sample_contamination_pct
from operations.synth_scrap import GRADES
from scrapannot.roles import Role

PREFIX = "sim-rater-"
# The panel `manage.py simulate_ratings` and the demo draw unless told otherwise.
DEFAULT_RATERS = 8
DEFAULT_SEED = 11


class TruthFileError(ValueError):
    """The labels file cannot be read or holds something else than synth's records."""


def read_truth(path: Path | None) -> dict[str, tuple[float, str]]:
    """{plant railcar id: (contamination %, grade)} from a synth labels.jsonl."""
    if path is None:
        return {}
    truth = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TruthFileError(f"cannot read {path}: {exc}") from exc
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
            raise TruthFileError(f"{path}:{number}: not a labels.jsonl record ({exc})") from exc
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


def simulated_raters_exist() -> bool:
    return User.objects.filter(username__startswith=PREFIX).exists()


@dataclass(frozen=True)
class SimulatedRatings:
    railcars: int  # fully rated by the panel
    raters: int
    statuses: Counter[str]  # of those railcars, now

    def summary(self) -> str:
        return (
            f"{self.railcars} railcars fully rated by {self.raters} simulated raters: "
            f"{self.statuses[Railcar.Status.LABELED]} with a final label, "
            f"{self.statuses[Railcar.Status.IN_ADJUDICATION]} waiting for adjudication, "
            f"{self.statuses[Railcar.Status.RATED]} waiting for aggregation by a worker."
        )


def rate_from_pool(
    *,
    railcars: int,
    truth: dict[str, tuple[float, str]],
    raters: int = DEFAULT_RATERS,
    seed: int = DEFAULT_SEED,
) -> SimulatedRatings:
    """A panel of `raters` takes railcars from the pool, busier raters more often, until
    `railcars` of them are fully rated or the pool has nothing left for anyone."""
    rng = np.random.default_rng(seed)
    panel = RaterPanel.draw(rng, raters)
    users = sim_raters(len(panel))
    weights = np.array([r.workload for r in panel.raters])
    done: set[int] = set()
    idle = 0
    while len(done) < railcars and idle < 3 * len(users):
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
    return SimulatedRatings(railcars=len(done), raters=len(users), statuses=statuses)
