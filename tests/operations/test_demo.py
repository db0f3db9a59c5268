"""The first run: the demo accounts and `manage.py demo` (moved from tests/test_browser_smoke.py
with the command)."""

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from labeling.models import Railcar, Rating
from operations.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, ensure_demo_users
from scrapannot.models import AuditEvent
from scrapannot.roles import Role, user_roles

pytestmark = pytest.mark.usefixtures("fast_password_hashing")

DEMO_USERNAMES = [a.username for a in DEMO_ACCOUNTS]


def demo_user_count() -> int:
    # Not User.objects.count(): django-guardian keeps an AnonymousUser row of its own.
    return User.objects.filter(username__in=DEMO_USERNAMES).count()


# --- demo accounts ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_demo_users_are_created_once_with_one_role_each() -> None:
    first = ensure_demo_users()
    second = ensure_demo_users()

    assert [u.created for u in first] == [True] * len(DEMO_ACCOUNTS)
    assert [u.created for u in second] == [False] * len(DEMO_ACCOUNTS)
    assert demo_user_count() == len(DEMO_ACCOUNTS)
    for account in DEMO_ACCOUNTS:
        user = User.objects.get(username=account.username)
        assert user.check_password(DEMO_PASSWORD)
        assert user_roles(user) == {account.role}
        assert user.is_staff == (account.username == "admin1")
    assert Token.objects.count() == 1
    assert [u.api_token for u in first if u.api_token] == [
        u.api_token for u in second if u.api_token
    ]


@pytest.mark.django_db
def test_rerunning_the_demo_users_puts_back_a_changed_password_and_role() -> None:
    ensure_demo_users()
    senior = User.objects.get(username="senior1")
    senior.set_password("something-else-9")
    senior.save()
    senior.groups.clear()

    ensure_demo_users()

    senior = User.objects.get(username="senior1")
    assert senior.check_password(DEMO_PASSWORD)
    assert user_roles(senior) == {Role.SENIOR_INSPECTOR}


# --- manage.py demo --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_demo_command_sets_up_users_railcars_and_audit_events_once(
    tmp_path: Path, loop_schedules: None
) -> None:
    out = tmp_path / "demo-unloadings"
    args = ["--no-serve", "--railcars", "2", "--width", "320", "--height", "180", "--out", out]

    first = io.StringIO()
    call_command("demo", *args, stdout=first)
    counts = (demo_user_count(), Railcar.objects.count(), AuditEvent.objects.count())
    second = io.StringIO()
    call_command("demo", *args, stdout=second)

    assert counts[0] == len(DEMO_ACCOUNTS)
    assert counts[1] == 2
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 2
    assert (demo_user_count(), Railcar.objects.count(), AuditEvent.objects.count()) == counts
    assert "2 ingested now, 0 were already there." in first.getvalue()
    assert "Reusing 2 synthetic unloadings" in second.getvalue()
    assert "0 ingested now, 2 were already there." in second.getvalue()
    assert DEMO_PASSWORD in second.getvalue()
    assert "http://127.0.0.1:8000/" in second.getvalue()
    # Simulated raters rated what reached the pool, once: the second run adds no rating.
    in_pool_or_later = Railcar.objects.exclude(
        status__in=[Railcar.Status.NEEDS_ATTENTION, Railcar.Status.CHECKING]
    ).count()
    assert in_pool_or_later >= 1
    assert Rating.objects.count() == 3 * in_pool_or_later
    assert "simulated raters" in first.getvalue()
    assert "Simulated raters rate" not in second.getvalue()
    # The learning loop's first pass, once (two railcars are too few to train on: it says so).
    assert "The learning loop once" in first.getvalue()
    assert "has run already" in second.getvalue()
