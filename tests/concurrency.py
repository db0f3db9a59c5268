"""Run one function in many threads at once, each with its own database connection; open a
connection of one's own beside Django's."""

import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from django.db import connection

T = TypeVar("T")


def run_at_once(work: Callable[[], T], *, threads: int) -> list[T]:
    """Start `threads` threads on `work` together (a barrier), wait for all, and return their
    results; re-raise the first exception any of them hit."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if errors:
        raise errors[0]
    return results


def raw_connection(**options: object) -> psycopg.Connection:
    """A psycopg connection to the test database, outside Django (its own transactions, its own
    locks): another client of the same PostgreSQL."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, **options)
