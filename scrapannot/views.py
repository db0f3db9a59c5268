from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from scrapannot import policy
from scrapannot.audit import backlog, verify_chain, verify_since_checkpoint
from scrapannot.audit_search import AuditFilterForm, pretty_payload, search_events
from scrapannot.health import health
from scrapannot.models import AuditEvent
from scrapannot.policy_previews import previews
from scrapannot.roles import Role, role_required

AUDIT_PAGE_SIZE = 50


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "scrapannot/home.html")


@require_GET
@role_required(Role.ADMIN)
def audit_trail(request: HttpRequest) -> HttpResponse:
    # ?full=1 walks the whole chain now; otherwise from the last nightly full check on.
    report = verify_chain() if request.GET.get("full") == "1" else verify_since_checkpoint()
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        events = AuditEvent.objects.none()
    else:
        events = form.events() if form.is_bound else search_events()
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(e, pretty_payload(e.payload)) for e in page]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "report": report, "form": form, "page": page, "rows": rows, "query": query.urlencode(),
        "backlog": backlog(),
    }  # fmt: skip
    return render(request, "scrapannot/audit.html", context)


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """For a load balancer: 503 when this process cannot reach its database (take it out of
    rotation). A broker outage alone answers 200 with `"broker": "down: ..."`: pages and ratings
    still work and no committed work is lost (the reconciler enqueues it later), so pulling every
    web process out would only make it worse. `?strict=1` answers 503 for either, for
    monitoring."""
    report = health()
    ok = report.database_ok and (report.broker_ok or request.GET.get("strict") != "1")
    return JsonResponse(
        {"ok": ok, "database": report.database, "broker": report.broker},
        status=200 if ok else 503,
    )


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def policies(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    submitted: dict[str, str] = {}
    if request.method == "POST":
        key = request.POST.get("key", "")
        value = request.POST.get("value", "")
        try:
            policy.set_policy(key=key, value=value, actor=request.user)
        except ValidationError as exc:
            # Shown on the policy's own row, with the value typed, so it can be corrected there.
            errors[key] = "; ".join(exc.messages)
            submitted[key] = value
        else:
            messages.success(request, f"{key} saved.")
            return redirect("policies")
    values = policy.policy_values()  # every policy in one query
    rows = [
        {
            "policy": p,
            "value": values[p.key],
            "error": errors.get(p.key, ""),
            "submitted": submitted.get(p.key, values[p.key]),
        }
        for p in policy.registered().values()
    ]
    sections = [(p.template, p.context(request.GET)) for p in previews()]
    return render(
        request,
        "scrapannot/policies.html",
        {"rows": rows, "sections": sections},
        status=400 if errors else 200,
    )
