"""Django's PostgreSQL backend, with a persistent connection's health check that costs no round
trip while the connection is quiet.

With CONN_HEALTH_CHECKS, Django sends `SELECT 1` before the first query of every request that
reuses a connection: one more round trip on each of the annotator loop's calls (about a tenth of
a call's time in a profile of `bin/bench annotator_loop`). A connection the server dropped (a
restart, `pg_terminate_backend`, an idle timeout) has something to read on its socket: the
server's goodbye, or the end of the stream. So a socket with nothing to read, on a connection
libpq holds as open and idle, gets no query; anything else (data waiting, an error, a closed
socket, a transaction left open) gets Django's `SELECT 1`, which replaces the connection if it
fails. A peer that vanishes without a word (a cut cable) is not seen by either check before the
request's first query times out.
"""

import select

import psycopg
from django.db.backends.postgresql import base
from psycopg.pq import ConnStatus, TransactionStatus


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self) -> None:
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()


def quiet(connection: object) -> bool:
    """Whether a psycopg connection is open, idle, and has nothing waiting on its socket."""
    pgconn = connection.pgconn  # type: ignore[attr-defined]
    if pgconn.status != ConnStatus.OK or pgconn.transaction_status != TransactionStatus.IDLE:
        return False
    try:
        poller = select.poll()
        poller.register(pgconn.socket, select.POLLIN | select.POLLPRI)
        return not poller.poll(0)  # POLLHUP and POLLERR come back too, unasked
    except (OSError, ValueError, AttributeError, psycopg.Error):  # no socket, or no poll()
        return False
