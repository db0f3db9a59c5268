"""The PostgreSQL backend's health check (scrapannot.postgres): a quiet connection is kept
without a query, one the server dropped is replaced before a request uses it."""

import os
import time

import pytest
from django.core.signals import request_started
from django.db import connection, connections

from scrapannot.postgres.base import quiet
from tests.concurrency import raw_connection

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="PostgreSQL's"
)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def new_request() -> None:
    # What Django does when a request starts: connections are checked again on first use.
    request_started.send(sender=None)


def test_the_settings_choose_this_backend_with_health_checks():
    assert type(connections["default"]).__module__ == "scrapannot.postgres.base"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] is True


def test_a_quiet_connection_is_kept_and_checked_without_a_query(transactional_db):
    pid = backend_pid()
    assert quiet(connection.connection)
    with raw_connection(autocommit=True) as other:
        before = other.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()[0]
        new_request()
        connection.close_if_health_check_failed()
        after = other.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()[0]
    # The backend's last statement is still ours, not a `SELECT 1`.
    assert connection.health_check_done
    assert before == after == "SELECT pg_backend_pid()"
    assert backend_pid() == pid


def test_a_connection_the_server_dropped_is_replaced_before_the_request_uses_it(
    transactional_db,
):
    pid = backend_pid()
    with raw_connection(autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 5
    while quiet(connection.connection) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not quiet(connection.connection)  # the server's goodbye is waiting on the socket

    new_request()

    assert backend_pid() != pid  # replaced, and the request's first query worked


def test_a_connection_left_in_a_transaction_is_not_quiet(transactional_db):
    backend_pid()
    raw = connection.connection
    raw.execute("BEGIN")
    try:
        assert not quiet(raw)
    finally:
        raw.execute("ROLLBACK")
    assert quiet(raw)
