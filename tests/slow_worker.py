"""A Celery app for fault-injection tests: the real app, with a pause after each frame's checks
are saved, so that a test can kill the worker in the middle of a railcar. Nothing is replaced:
the real `save_frame_checks` runs, then the worker sleeps."""

import os
import time

import django

from scrapannot.celery import app

django.setup()  # the models must load before the pipeline module can be imported

from labeling import pipeline  # noqa: E402

__all__ = ["app"]

_save_frame_checks = pipeline.save_frame_checks
_PAUSE = float(os.environ.get("SLOW_WORKER_PAUSE_S", "0.3"))


def _save_then_pause(**kwargs: object) -> None:
    _save_frame_checks(**kwargs)
    time.sleep(_PAUSE)


pipeline.save_frame_checks = _save_then_pause
