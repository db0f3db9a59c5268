"""What /healthz reports: can this web process reach its database and its broker?"""

import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection
from kombu.exceptions import OperationalError as BrokerError

BROKER_TIMEOUT_S = 2
# A load balancer polls every few seconds per web process; connecting to the broker on each poll
# would cost more than the rest of the check, so the broker's answer is reused this long.
BROKER_CACHE_S = 5.0
_broker_cache: tuple[float, str] = (-BROKER_CACHE_S, "")


@dataclass(frozen=True)
class Health:
    database: str  # "ok" or why not
    broker: str  # "ok", "in-process" (no broker configured), or why not

    @property
    def database_ok(self) -> bool:
        return self.database == "ok"

    @property
    def broker_ok(self) -> bool:
        return self.broker in ("ok", "in-process")


def database_health() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        return f"down: {exc.__class__.__name__}"
    return "ok"


def broker_health() -> str:
    global _broker_cache
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "in-process"
    checked_at, answer = _broker_cache
    if time.monotonic() - checked_at < BROKER_CACHE_S:
        return answer
    answer = _connect_broker()
    _broker_cache = (time.monotonic(), answer)
    return answer


def _connect_broker() -> str:
    from scrapannot.celery import app

    try:
        url = settings.CELERY_BROKER_URL
        with app.connection_for_write(url, connect_timeout=BROKER_TIMEOUT_S) as conn:
            # max_retries=0: one attempt (the Redis transport pings on connect), no waiting.
            conn.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT_S)
    except (BrokerError, OSError) as exc:
        return f"down: {exc.__class__.__name__}"
    return "ok"


def health() -> Health:
    return Health(database=database_health(), broker=broker_health())
