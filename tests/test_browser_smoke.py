"""The first run, end to end: the demo command, the demo accounts, and each role in a browser."""

import io
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from playwright.sync_api import Page, expect
from rest_framework.authtoken.models import Token

from labeling.models import Railcar, Rating
from operations.demo import DEMO_ACCOUNTS, DEMO_PASSWORD, ensure_demo_users
from scrapannot.models import AuditEvent
from scrapannot.roles import Role, user_roles
from tests.labeling.unloadings import named_layers_unloading

pytest_plugins = ["tests.browser_fixtures"]

DEMO_USERNAMES = [a.username for a in DEMO_ACCOUNTS]


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # The default PBKDF2 costs about 0.4 s a hash; these tests hash a dozen times each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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
def test_the_demo_command_sets_up_users_railcars_and_audit_events_once(tmp_path: Path) -> None:
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


# --- each role in a browser ------------------------------------------------------------------

ROLE_CARDS = [("annotator1", "annotator"), ("senior1", "senior"), ("admin1", "admin")]


@pytest.fixture
def demo_users(transactional_db) -> None:
    ensure_demo_users()


def role_cards(page: Page) -> list[str | None]:
    return [card.get_attribute("data-role") for card in page.locator("[data-role]").all()]


@pytest.mark.browser
@pytest.mark.parametrize(("username", "card"), ROLE_CARDS)
def test_each_role_lands_on_a_page_with_its_own_card_only(
    page: Page, log_in, live_server, demo_users: None, username: str, card: str
) -> None:
    log_in(username=username, password=DEMO_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text(username)
    assert role_cards(page) == [card]


@pytest.mark.browser
def test_the_admin_reaches_the_audit_trail_and_the_railcars_in_the_django_admin(
    page: Page, log_in, live_server, demo_users: None, tmp_path: Path
) -> None:
    call_command("ingest", named_layers_unloading().write(tmp_path / "u1"), stdout=io.StringIO())
    log_in(username="admin1", password=DEMO_PASSWORD)

    page.locator("[data-role=admin]").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.locator("[data-chain=ok]")).to_contain_text("Chain verified")
    expect(page.locator("table.grid")).to_contain_text("unloading.ingested")

    page.goto("/")
    page.locator("[data-role=admin]").get_by_role("link", name="Railcars").click()
    expect(page).to_have_url(f"{live_server.url}/ops/railcars/")
    page.get_by_role("link", name="RC-58231774").click()
    expect(page.get_by_role("heading", name="RC-58231774")).to_be_visible()
    expect(page.locator("body")).to_contain_text("unloading.ingested")


@pytest.mark.browser
def test_an_annotator_is_refused_the_audit_trail(page: Page, log_in, demo_users: None) -> None:
    log_in(username="annotator1", password=DEMO_PASSWORD)

    response = page.goto("/audit/")

    assert response is not None and response.status == 403
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)


@pytest.mark.browser
def test_logging_out_ends_the_session(page: Page, log_in, demo_users: None) -> None:
    log_in(username="senior1", password=DEMO_PASSWORD)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url
    page.goto("/")

    assert "/accounts/login/?next=/" in page.url
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


@pytest.mark.browser
def test_a_wrong_password_shows_an_error_and_keeps_the_user_out(
    page: Page, log_in, demo_users: None
) -> None:
    log_in(username="admin1", password="not-the-password")

    expect(page.locator(".error")).to_contain_text("didn't match")
    assert "/accounts/login/" in page.url
    assert role_cards(page) == []
