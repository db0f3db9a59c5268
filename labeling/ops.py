"""What operations staff see of the checks: rejection shares per check per day, rejected frames,
railcars that need attention."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Max, Min, Prefetch, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from labeling import tasks
from labeling.models import Frame, FrameCheck, Railcar
from labeling.quality import CHECKS
from scrapannot import audit
from scrapannot.enqueue import enqueue


@dataclass(frozen=True)
class RejectionSeries:
    days: list[date]
    frames: list[int]  # frames checked per day
    share: dict[str, list[float | None]]  # check -> share of that day's frames failing it


def _frame_filter(*, line: str, camera: str) -> Q:
    q = Q()
    if line:
        q &= Q(railcar__line=line)
    if camera:
        q &= Q(camera=camera)
    return q


def cameras() -> list[tuple[str, str]]:
    """(line, camera) pairs that sent frames."""
    pairs = Frame.objects.values_list("railcar__line", "camera").distinct()
    return sorted(set(pairs))


DEFAULT_DAYS = 30
MAX_DAYS = 366


@dataclass(frozen=True)
class Window:
    end: date
    days: int


def data_window(*, line: str = "", camera: str = "") -> Window:
    """The default window of the chart: the range that holds checked frames. It ends on the
    latest day of capture (today when nothing was checked) and reaches back to the earliest,
    at least DEFAULT_DAYS and at most MAX_DAYS. A fixed "last 30 days" drew an empty chart for
    frames captured earlier (a replay, an import, the demo's synthetic dates)."""
    span = (
        Frame.objects.filter(_frame_filter(line=line, camera=camera))
        .exclude(quality=Frame.Quality.PENDING)
        .aggregate(first=Min("captured_at"), last=Max("captured_at"))
    )
    if span["last"] is None:
        return Window(end=timezone.now().date(), days=DEFAULT_DAYS)
    last = timezone.localdate(span["last"])
    first = timezone.localdate(span["first"])
    return Window(end=last, days=max(DEFAULT_DAYS, min(MAX_DAYS, (last - first).days + 1)))


def rejection_series(
    *, line: str = "", camera: str = "", days: int = DEFAULT_DAYS, end: date | None = None
) -> RejectionSeries:
    """Per day of capture, from `days` - 1 days before `end` (default today) to `end`."""
    end = end or timezone.now().date()
    since = end - timedelta(days=days - 1)
    frames = Frame.objects.filter(
        _frame_filter(line=line, camera=camera),
        captured_at__date__gte=since,
        captured_at__date__lte=end,
    ).exclude(quality=Frame.Quality.PENDING)
    per_day = dict(
        frames.annotate(day=TruncDate("captured_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    failed = (
        FrameCheck.objects.filter(frame__in=frames, passed=False)
        .annotate(day=TruncDate("frame__captured_at"))
        .values_list("day", "name")
        .annotate(n=Count("id"))
    )
    counts = {(day, name): n for day, name, n in failed}
    day_list = [since + timedelta(days=i) for i in range(days)]
    return RejectionSeries(
        days=day_list,
        frames=[per_day.get(d, 0) for d in day_list],
        share={
            check: [
                counts.get((d, check), 0) / per_day[d] if per_day.get(d) else None for d in day_list
            ]
            for check in CHECKS
        },
    )


def rejected_frames(*, line: str = "", camera: str = "", limit: int = 60) -> QuerySet[Frame]:
    failed = FrameCheck.objects.filter(passed=False).order_by("name")
    return (
        Frame.objects.filter(
            _frame_filter(line=line, camera=camera), quality=Frame.Quality.INELIGIBLE
        )
        .select_related("railcar")
        .prefetch_related(Prefetch("checks", queryset=failed, to_attr="failed_checks"))
        .order_by("-captured_at", "-index")[:limit]
    )


def railcars_needing_attention(*, line: str = "", limit: int = 100) -> QuerySet[Railcar]:
    railcars = Railcar.objects.filter(status=Railcar.Status.NEEDS_ATTENTION)
    if line:
        railcars = railcars.filter(line=line)
    return railcars.order_by("-created_at")[:limit]


def request_rejudge(*, actor: AbstractBaseUser) -> None:
    """Re-apply the current quality thresholds to checked railcars, in the background."""
    with transaction.atomic():
        audit.record(action="quality.rejudge_requested", actor=actor)
        transaction.on_commit(lambda: enqueue(tasks.rejudge_quality))
