"""An annotator's own progress, for their queue page: railcars rated today and this week, their
median time per railcar, and how many railcars the pool still holds for them.

Double-blind: every figure is computed from the annotator's own ratings, except the pool count,
which is a number only (never which railcars) and counts exactly what `pool.next_assignment`
could hand them. Nothing here reads another rater's rating, time or assignment.
"""

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from labeling import pool
from labeling.models import Rating

# The median time is taken over this many of the annotator's latest ratings: recent enough to
# follow their pace as they learn, many enough not to jump with one slow railcar.
MEDIAN_OVER = 50


@dataclass(frozen=True)
class AnnotatorProgress:
    rated_today: int
    rated_this_week: int
    rated_total: int
    median_seconds: int | None  # over the latest MEDIAN_OVER ratings; None before the first
    median_over: int  # how many ratings the median is taken over
    left_in_pool: int

    @property
    def median_display(self) -> str:
        if self.median_seconds is None:
            return "—"
        minutes, seconds = divmod(self.median_seconds, 60)
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


def _day_start(moment: datetime) -> datetime:
    return timezone.localtime(moment).replace(hour=0, minute=0, second=0, microsecond=0)


def annotator_progress(
    *, annotator: AbstractBaseUser, now: datetime | None = None
) -> AnnotatorProgress:
    """The annotator's figures as of `now`; days and weeks (from Monday) in the site's time
    zone."""
    now = now or timezone.now()
    today = _day_start(now)
    week = today - timedelta(days=today.weekday())
    mine = Rating.objects.filter(annotator=annotator)
    latest = list(
        mine.order_by("-submitted_at").values_list("seconds_spent", flat=True)[:MEDIAN_OVER]
    )
    return AnnotatorProgress(
        rated_today=mine.filter(submitted_at__gte=today, submitted_at__lte=now).count(),
        rated_this_week=mine.filter(submitted_at__gte=week, submitted_at__lte=now).count(),
        rated_total=mine.count(),
        median_seconds=round(statistics.median(latest)) if latest else None,
        median_over=len(latest),
        left_in_pool=pool.railcars_left(annotator=annotator),
    )
