"""Operations pages for admins: quality-check rejections per camera and line."""

from datetime import date

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from labeling import camera_baselines, ops, pipeline
from labeling.models import Frame
from labeling.policies import history_rule, quality_thresholds
from labeling.thumbnails import thumbnail_bytes
from scrapannot import charts
from scrapannot.roles import Role, role_required


def _int_param(request: HttpRequest, name: str, default: int, *, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.GET.get(name, default))))
    except ValueError:
        return default


def _date_param(request: HttpRequest, name: str, default: date) -> date:
    try:
        return date.fromisoformat(request.GET.get(name, "")[:10])
    except ValueError:
        return default


@require_GET
@role_required(Role.ADMIN)
def quality_ops(request: HttpRequest) -> HttpResponse:
    line = request.GET.get("line", "")[:32]
    camera = request.GET.get("camera", "")[:64]
    # Unless asked for another range, the chart shows the range that holds data.
    window = ops.data_window(line=line, camera=camera)
    days = _int_param(request, "days", window.days, low=1, high=ops.MAX_DAYS)
    end = _date_param(request, "end", window.end)
    series = ops.rejection_series(line=line, camera=camera, days=days, end=end)
    chart = {
        "days": [d.isoformat() for d in series.days],
        "frames": series.frames,
        "share": series.share,
        # The page's script draws the chart in the palette of every other chart.
        "colors": {check: charts.colour(i) for i, check in enumerate(series.share)},
    }
    context = {
        "line": line,
        "camera": camera,
        "days": days,
        "end": end,
        "start": series.days[0],
        "cameras": ops.cameras(),
        "chart": chart,
        "rejected": ops.rejected_frames(line=line, camera=camera),
        "attention": ops.railcars_needing_attention(line=line),
        "baselines": camera_baselines.camera_rows(line=line, camera=camera),
        "thresholds": quality_thresholds(),
        "rule": history_rule(),
    }
    return render(request, "labeling/quality_ops.html", context)


@require_GET
@role_required(Role.ADMIN)
def frame_thumbnail(request: HttpRequest, uid: str) -> HttpResponse:
    frame = get_object_or_404(Frame, uid=uid)
    data = thumbnail_bytes(frame=frame)
    if data is None:
        raise Http404("no image for this frame")
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def rejudge_quality(request: HttpRequest) -> HttpResponse:
    """GET: what a re-judge would change now (a dry run), and the button that confirms it."""
    if request.method == "GET":
        context = {"preview": pipeline.rejudge_preview()}
        return render(request, "labeling/quality_rejudge_confirm.html", context)
    ops.request_rejudge(actor=request.user)
    messages.success(request, "The current thresholds are being re-applied to checked railcars.")
    return redirect("labeling:quality-ops")
