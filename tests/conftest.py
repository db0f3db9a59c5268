"""Shared test fixtures and helpers: named users per role, a page client for a user, the fast
password hasher, isolated media storage, frame bytes.

The suite runs against the real PostgreSQL and Redis that `bin/test` points it at.
"""

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scrapannot.roles import Role

pytest_plugins = ["tests.celery_worker"]


def _broker_of_this_xdist_worker() -> str | None:
    """Under pytest-xdist (`bin/test` runs the suite in two processes) each process takes its own
    Redis database as the broker, the base one for gw0, the one below for gw1, and so on: the
    worker tests flush it, and their Celery workers must not take the other process's tasks.
    The test databases are apart already (pytest-django suffixes them per process)."""
    worker, url = os.environ.get("PYTEST_XDIST_WORKER", ""), os.environ.get("CELERY_BROKER_URL", "")
    base, _, number = url.rpartition("/")
    if not worker.startswith("gw") or not url.startswith("redis://") or not number.isdigit():
        return None
    return f"{base}/{(int(number) - int(worker[2:])) % 16}"


_OWN_BROKER = _broker_of_this_xdist_worker()
if _OWN_BROKER:
    # Before Django reads its settings where that comes later, and for every subprocess (Celery
    # workers, gunicorn) the tests start with this environment.
    os.environ["CELERY_BROKER_URL"] = _OWN_BROKER


@pytest.fixture(autouse=True, scope="session")
def _own_broker_per_process() -> Iterator[None]:
    if _OWN_BROKER:
        from django.conf import settings

        from scrapannot.celery import app

        settings.CELERY_BROKER_URL = _OWN_BROKER
        app.conf.broker_url = _OWN_BROKER
    yield


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _audit_sealed_by_the_sequencer(settings) -> None:
    """Production's audit path whatever the environment (a run without a broker would seal
    inline): events are recorded unsealed, and tests that read the chain seal first
    (`audit.seal_pending`, what the sequencer runs)."""
    settings.AUDIT_SEAL_INLINE = False


@pytest.fixture
def on_postgresql(db) -> None:
    assert connection.vendor == "postgresql", (
        "the suite runs on PostgreSQL: set DATABASE_URL (bin/test does)"
    )


@pytest.fixture(params=["sql", "orm"])
def pool_path(request, settings) -> str:
    """Both ways the pool leases railcars and stores ratings on PostgreSQL: the PL/pgSQL
    functions (`labeling.sql_path`, the default) and the ORM path that SQLite takes. A module
    that lists this fixture in `pytestmark` runs each of its tests against both."""
    if request.param == "sql" and connection.vendor != "postgresql":
        pytest.skip("the SQL path is PostgreSQL's")
    settings.LABELING_SQL_PATH = request.param == "sql"
    return request.param


def user_with_roles(username: str, *roles: Role) -> User:
    user = User.objects.create_user(username=username, password=f"{username}-pass-1")
    for role in roles:
        # get_or_create: a transactional test's flush also empties the groups the migration made.
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    return user


def client_for(user: User | None, **kwargs: object) -> Client:
    """A page client logged in as `user`; anonymous for None."""
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def fast_password_hashing(settings) -> None:
    """The default PBKDF2 costs about 0.4 s a hash, on purpose: tests that make many users or log
    in with a password ask for this one instead."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def annotator(db) -> User:
    return user_with_roles("ann", Role.ANNOTATOR)


@pytest.fixture
def senior(db) -> User:
    return user_with_roles("senior", Role.SENIOR_INSPECTOR)


@pytest.fixture
def admin_user(db) -> User:
    return user_with_roles("boss", Role.ADMIN)


@pytest.fixture
def outsider(db) -> User:
    return user_with_roles("outsider")


# The lines the test unloadings are posted for (tests/labeling/unloadings.py, factories, and the
# synthetic railcars of operations.synth, L1-L6).
PLANT_LINES = ("L1", "L2", "L3", "L4", "L5", "L6")


def grant_lines(user: User, *names: str, permission: str = "post_unloadings") -> None:
    """Grant `user` `permission` on the lines `names`, creating the Line rows as needed.

    Test set-up, so guardian's assign_perm directly rather than labeling.lines.grant: the tests
    that count audit events count those of the action under test."""
    from guardian.shortcuts import assign_perm

    from labeling.models import Line

    for name in names:
        assign_perm(f"labeling.{permission}", user, Line.objects.get_or_create(name=name)[0])


@pytest.fixture
def plant(db) -> User:
    """A plant system granted the lines the test unloadings use (L1-L6); L7 and up are not."""
    user = user_with_roles("plant-l2", Role.PLANT_SYSTEM)
    grant_lines(user, *PLANT_LINES)
    return user


@pytest.fixture
def plant_client(plant: User) -> APIClient:
    client = APIClient()
    token = Token.objects.create(user=plant)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def jpeg_bytes(
    width: int = 64, height: int = 48, *, seed: int = 0, exif: bytes | None = None
) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    Image.fromarray(pixels).save(out, format="JPEG", quality=85, **kwargs)
    return out.getvalue()


@pytest.fixture
def make_jpeg() -> Callable[..., bytes]:
    return jpeg_bytes


@pytest.fixture
def loop_schedules(db) -> None:
    """The migrations' schedules of the learning loop (a transactional test's flush may have
    removed them): rater calibration, retraining and scoring."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    crontab = CrontabSchedule.objects.get_or_create(minute="0", hour="3", day_of_week="*")[0]
    for task in ("adjudication.estimate_calibrations", "mlloop.retrain", "mlloop.score_railcars"):
        PeriodicTask.objects.get_or_create(task=task, defaults={"name": task, "crontab": crontab})
