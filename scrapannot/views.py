from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.roles import Role, has_role


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "scrapannot/home.html")


@login_required
@require_GET
def audit_trail(request: HttpRequest) -> HttpResponse:
    if not has_role(request.user, Role.ADMIN):
        raise PermissionDenied
    report = verify_chain()
    events = AuditEvent.objects.order_by("-seq")[:100]
    return render(request, "scrapannot/audit.html", {"report": report, "events": events})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"ok": True})
