"""The annotator's pages: the queue and the workspace. Thin: the workspace loads its data from
the annotator API (labeling/annotation_apis.py) with the page's session."""

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from labeling import guidelines, pool, progress
from labeling.models import FailureCode, Grade, InclusionKind
from scrapannot.roles import Role, role_required


# never_cache (no-store among its headers) on both pages: after Back, the browser must ask the
# server again instead of showing a rated railcar's workspace as editable.
@never_cache
@require_GET
@role_required(Role.ANNOTATOR)
def queue(request: HttpRequest) -> HttpResponse:
    held = pool.current_assignment(annotator=request.user)
    return render(request, "labeling/queue.html", {"held": held, "progress": _progress(request)})


def _progress(request: HttpRequest) -> progress.AnnotatorProgress:
    # The annotator's own figures only (labeling.progress): nothing about others.
    return progress.annotator_progress(annotator=request.user)


@require_http_methods(["GET", "POST"])
@role_required(Role.ANNOTATOR)
def take_next(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        # Opened as a link or from the history: taking a lease is the queue button's POST (a GET
        # must not), so the queue page it is.
        return redirect("labeling:queue")
    assignment = pool.next_assignment(annotator=request.user)
    if assignment is None:
        context = {"held": None, "empty": True, "progress": _progress(request)}
        return render(request, "labeling/queue.html", context)
    return redirect("labeling:workspace", uid=assignment.uid)


@never_cache
@require_GET
@role_required(Role.ANNOTATOR)
def workspace(request: HttpRequest, uid: str) -> HttpResponse:
    try:
        assignment = pool.holder_assignment(uid=uid, annotator=request.user)
    except pool.NotYourAssignment as exc:
        raise Http404 from exc
    context = {
        "assignment": assignment,
        "failure_codes": FailureCode.choices,
        "grades": Grade.choices,
        "inclusion_kinds": InclusionKind.choices,
        "release_reasons": pool.ReleaseReason.choices,
        "frames_unusable": pool.ReleaseReason.FRAMES_UNUSABLE,
        # The admins' text and its version only: nothing about other raters or railcars.
        "guidelines": guidelines.current_guidelines(),
    }
    return render(request, "labeling/workspace.html", context)
