"""Settings read from the environment: a yes/no variable takes the usual spellings and refuses
anything else, so a typo never flips DEBUG."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from scrapannot.settings import env_bool

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True), ("true", True), ("True", True), ("YES", True), ("on", True), (" yes ", True),
        ("0", False), ("false", False), ("FALSE", False), ("no", False), ("Off", False),
    ],
)  # fmt: skip
def test_a_yes_no_variable_takes_the_usual_spellings_in_any_case(monkeypatch, value, expected):
    monkeypatch.setenv("SCRAPANNOT_TEST_FLAG", value)

    assert env_bool("SCRAPANNOT_TEST_FLAG", not expected) is expected


@pytest.mark.parametrize("default", [True, False])
def test_an_unset_yes_no_variable_takes_its_default(monkeypatch, default):
    monkeypatch.delenv("SCRAPANNOT_TEST_FLAG", raising=False)

    assert env_bool("SCRAPANNOT_TEST_FLAG", default) is default


@pytest.mark.parametrize("value", ["flase", "ture", "2", "y", "", "enabled"])
def test_an_unknown_yes_no_value_is_refused_with_its_name(monkeypatch, value):
    monkeypatch.setenv("SCRAPANNOT_TEST_FLAG", value)

    with pytest.raises(ImproperlyConfigured, match="SCRAPANNOT_TEST_FLAG=.*1/0, true/false"):
        env_bool("SCRAPANNOT_TEST_FLAG", True)


def test_the_app_does_not_start_with_debug_misspelled():
    env = {**os.environ, "DEBUG": "flase", "SECRET_KEY": "x"}
    result = subprocess.run(
        [sys.executable, "-c", "import scrapannot.settings"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip

    assert result.returncode != 0
    assert "DEBUG='flase' is not a yes/no value" in result.stderr


STRONG_KEY = "a-production-key-of-more-than-fifty-characters-0123456789"


def _settings_process(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    # The browser tests set DJANGO_ALLOW_ASYNC_UNSAFE in this process; production never does.
    unset = ("SECRET_KEY", "DEBUG", "HTTPS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_production_refuses_a_weak_secret_key():
    result = _settings_process(["-c", "import scrapannot.settings"], DEBUG="0", SECRET_KEY="short")

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_the_production_recipe_passes_the_deploy_check():
    result = _settings_process(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="0", SECRET_KEY=STRONG_KEY, HTTPS="1", ALLOWED_HOSTS="scrapannot.plant.example",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_https_turns_on_hsts_the_ssl_redirect_secure_cookies_and_the_proxy_header():
    probe = (
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER)"
    )
    result = _settings_process(
        ["-c", f"import django; django.setup(); {probe}"],
        DJANGO_SETTINGS_MODULE="scrapannot.settings", DEBUG="0", SECRET_KEY=STRONG_KEY, HTTPS="1",
    )  # fmt: skip

    assert result.stdout.split() == [
        "31536000", "True", "True", "True", "('HTTP_X_FORWARDED_PROTO',", "'https')",
    ]  # fmt: skip
