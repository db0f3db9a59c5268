"""Events waiting to be sealed: shown on the audit page, an alarm past the bound there and in
`manage.py audit_verify`; the beat schedule that seals them; SQLite's inline sealing."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from scrapannot import audit
from scrapannot.models import AuditEvent
from scrapannot.tasks import seal_audit_events
from tests.conftest import client_for

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_the_page_shows_events_waiting_to_be_sealed_without_alarm(admin_user):
    audit.record(action="test.event")
    audit.seal_pending()
    audit.record(action="test.waiting")

    html = client_for(admin_user).get(reverse("audit-trail")).content.decode()

    assert 'data-sealing="pending"' in html and "1 newest event(s) not sealed yet" in html
    assert 'data-sealing="overdue"' not in html and 'data-chain="ok"' in html


def test_an_event_unsealed_past_the_bound_is_an_alarm_until_sealed(admin_user, settings, capsys):
    settings.AUDIT_SEAL_MAX_DELAY_SECONDS = 0
    audit.record(action="test.event")
    time.sleep(0.01)
    client = client_for(admin_user)

    html = client.get(reverse("audit-trail")).content.decode()
    assert 'data-sealing="overdue"' in html and "Sequencer behind" in html
    with pytest.raises(CommandError, match="sequencer behind"):
        call_command("audit_verify")

    call_command("audit_verify", seal=True)

    assert "audit chain ok: 1 events" in capsys.readouterr().out
    assert "data-sealing" not in client.get(reverse("audit-trail")).content.decode()


def test_beat_runs_the_sequencer_every_second():
    task = PeriodicTask.objects.get(task="scrapannot.seal_audit_events")
    assert task.enabled and (task.interval.every, task.interval.period) == (1, "seconds")

    audit.record(action="test.event")
    assert seal_audit_events.apply().get() == 1
    assert AuditEvent.objects.get().seq == 1


def test_audit_seal_command_seals_what_has_committed(capsys):
    for i in range(3):
        audit.record(action="test.event", payload={"i": i})

    call_command("audit_seal")

    assert "sealed 3 event(s)" in capsys.readouterr().out
    assert audit.verify_chain().events == 3


def test_on_sqlite_record_seals_inline_so_the_demo_needs_no_sequencer(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SCRAPANNOT_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="scrapannot.settings")
    script = (
        "import django; django.setup(); "
        "from django.core.management import call_command; "
        "call_command('migrate', verbosity=0); "
        "from scrapannot import audit; "
        "events = [audit.record(action='test.event', payload={'i': i}) for i in range(3)]; "
        "print([e.seq for e in events], audit.verify_chain().ok, audit.backlog().count); "
        "call_command('audit_verify')"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-2000:]
    assert "[1, 2, 3] True 0" in done.stdout
    assert "audit chain ok: 3 events" in done.stdout
