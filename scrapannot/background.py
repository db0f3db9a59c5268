"""The embedded mode's local worker: Celery tasks run in threads the app owns.

Without a broker (the first-run default, `CELERY_TASK_ALWAYS_EAGER`) a task sent with `.delay`
runs inside the request that sent it, so "Start a training run" held the tab for the whole run
and then said "queued" for a run that had finished. `manage.py demo` starts this worker before it
serves: from then on `enqueue` hands each task to a thread here and the page answers at once,
while the task writes its progress to the database as a real worker would (the model page polls
it). One thread per Celery queue (settings.CELERY_TASK_ROUTES), as production runs one worker
per queue: a training run never holds up a quality check or an aggregation.

Production and the tests never start it: a real worker (or the eager, in-request run that the
tests rely on) does the work instead.
"""

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_executors: dict[str, ThreadPoolExecutor] | None = None


def start() -> None:
    """Run tasks sent through `submit` in background threads from now on (idempotent)."""
    global _executors
    with _lock:
        if _executors is None:
            _executors = {}


def stop(*, wait: bool = True) -> None:
    """Stop taking tasks; with `wait`, let the ones already handed over finish."""
    global _executors
    with _lock:
        executors, _executors = _executors, None
    for executor in (executors or {}).values():
        executor.shutdown(wait=wait)


def running() -> bool:
    return _executors is not None


def _queue(task: Task) -> str:
    route = settings.CELERY_TASK_ROUTES.get(task.name) or {}
    return route.get("queue", settings.CELERY_TASK_DEFAULT_QUEUE)


def _executor(queue: str) -> ThreadPoolExecutor | None:
    with _lock:
        if _executors is None:
            return None
        if queue not in _executors:
            _executors[queue] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=queue)
        return _executors[queue]


def _run(task: Task, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # A thread has its own database connections: drop stale ones first, and close them after,
    # so a long-lived thread neither holds a SQLite lock nor leaks a PostgreSQL connection.
    close_old_connections()
    try:
        result = task.apply(args=args, kwargs=kwargs, task_id=task_id, throw=False)
        if result.failed():
            logger.error("background task %s[%s] failed: %r", task.name, task_id, result.result)
        return result.result
    finally:
        connections.close_all()


def submit(task: Task, *args: Any, **kwargs: Any) -> tuple[str, Future[Any]] | None:
    """Hand `task(*args, **kwargs)` to its queue's thread; its task id and future, or None when
    the local worker is not running (the caller then sends the task as usual)."""
    executor = _executor(_queue(task))
    if executor is None:
        return None
    task_id = str(uuid.uuid4())
    return task_id, executor.submit(_run, task, task_id, args, kwargs)
