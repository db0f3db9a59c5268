"""Enqueue a task after a commit without letting a broker outage fail the committed work.

The data is already committed when an on-commit hook enqueues; a `500` then would tell the client
that nothing happened, and its retry would find the work done and queue nothing. So a refused
enqueue is logged and left to the reconciler (`labeling.reconcile`), which finds railcars whose
state has waited too long for its task and enqueues again.
"""

import logging
from typing import Any

from celery import Task, current_app
from kombu.exceptions import OperationalError as BrokerError

from scrapannot import background

logger = logging.getLogger(__name__)


def enqueue(task: Task | str, *args: Any, **kwargs: Any) -> bool:
    """`send`, answering whether the broker took the message."""
    return send(task, *args, **kwargs) is not None


def send(task: Task | str, *args: Any, **kwargs: Any) -> str | None:
    """Send the task (to the embedded mode's local worker when it runs, `scrapannot.background`);
    its task id, or None (and a warning in the log) when the broker refused.

    `task` may be a registered task's name: a domain module then enqueues its own task without
    importing the tasks module that imports it (eager mode still runs it in-process)."""
    if isinstance(task, str):
        task = current_app.tasks[task]
    handed = background.submit(task, *args, **kwargs)
    if handed is not None:
        return handed[0]
    try:
        result = task.delay(*args, **kwargs)
    except BrokerError as exc:
        logger.warning("enqueue of %s%r failed, left to the reconciler: %s", task.name, args, exc)
        return None
    return result.id or ""
