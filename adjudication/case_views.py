"""The senior inspectors' pages: the adjudication queue, one case with every rating side by side,
and the decision.

Raters appear as letters in rating order (Rater A, B, C), never by username, id or pseudonym, so
that a decision weighs the evidence and not who gave it; the railcar appears by its opaque uid
only (no plant id, line or camera) so that a supplier or a line cannot anchor the decision. A
senior inspector who rated a railcar themselves sees none of its figures and cannot decide it.
"""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from adjudication import aggregation, decisions
from adjudication.display import std_against_threshold
from adjudication.estimates import model_estimate
from adjudication.evidence import case_evidence
from adjudication.labels import current_label
from adjudication.models import AdjudicationCase, Consensus, RationaleCode
from labeling.framefiles import FrameFileMissing, frame_image_response
from labeling.models import Frame, Grade, Railcar
from scrapannot.roles import Role, has_role, role_required

REVIEWERS = (Role.SENIOR_INSPECTOR, Role.ADMIN)
QUEUE_LIMIT = 200
RECENT_DAYS = 7
RECENT_LIMIT = 100
REASON_LABELS = {
    aggregation.STD_ABOVE_THRESHOLD: "contamination STD above the threshold",
    aggregation.NO_GRADE_MAJORITY: "no grade majority",
    decisions.REOPENED: "reopened after a final label",
}
Status = AdjudicationCase.Status


class DecisionForm(forms.Form):
    contamination_pct = forms.DecimalField(
        label="Contamination", min_value=0, max_value=100, max_digits=4, decimal_places=1
    )
    grade = forms.ChoiceField(choices=Grade.choices, widget=forms.RadioSelect)
    rationale_code = forms.ChoiceField(
        label="Rationale", choices=RationaleCode.choices, widget=forms.RadioSelect
    )
    note = forms.CharField(max_length=1000, required=False, widget=forms.Textarea)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("rationale_code") == RationaleCode.OTHER and not data.get("note"):
            self.add_error("note", "The rationale 'other' needs a note that says why.")
        return data


@dataclass(frozen=True)
class QueueRow:
    case: AdjudicationCase
    consensus: Consensus | None
    own: bool  # the viewer rated this railcar: no figures, no link
    reasons: list[str]

    @property
    def std_shown(self) -> tuple[str, str] | None:
        if self.consensus is None:
            return None
        return std_against_threshold(self.consensus.std_pct, self.consensus.std_threshold)


def _consensus(case: AdjudicationCase) -> Consensus | None:
    return Consensus.objects.filter(railcar_id=case.railcar_id).first()


def _reasons(codes: list[str]) -> list[str]:
    return [REASON_LABELS.get(code, code) for code in codes]


def _int_param(request: HttpRequest, name: str, default: int, *, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(request.GET.get(name, default))))
    except ValueError:
        return default


@require_GET
@role_required(*REVIEWERS)
def queue(request: HttpRequest) -> HttpResponse:
    days = _int_param(request, "days", RECENT_DAYS, low=1, high=90)
    open_cases = list(decisions.open_cases()[:QUEUE_LIMIT])
    recent = list(
        AdjudicationCase.objects.filter(
            status__in=[Status.DECIDED, Status.WITHDRAWN],
            closed_at__gte=timezone.now() - timedelta(days=days),
        )
        .select_related("railcar", "decided_by", "final_label")
        .order_by("-closed_at", "-id")[:RECENT_LIMIT]
    )
    own = decisions.rated_by(request.user, [c.railcar_id for c in open_cases + recent])
    rows = [
        QueueRow(
            case=c,
            consensus=getattr(c.railcar, "consensus", None),
            own=c.railcar_id in own,
            reasons=_reasons(c.reasons),
        )
        for c in open_cases
    ]
    context = {
        "rows": rows,
        "open_total": decisions.open_cases().count(),
        "first": decisions.next_case(request.user),
        "recent": [(c, c.railcar_id in own) for c in recent],
        "days": days,
        "now": timezone.now(),
    }
    return render(request, "adjudication/queue.html", context)


@require_http_methods(["GET", "POST"])
@role_required(Role.ADMIN)
def reapply(request: HttpRequest) -> HttpResponse:
    """GET: what re-applying would change now (a dry run), and the button that confirms it."""
    if request.method == "GET":
        preview = aggregation.reapply_preview()
        context = {
            "preview": preview,
            "final": preview.get(Consensus.Outcome.FINAL, 0),
            "adjudication": preview.get(Consensus.Outcome.ADJUDICATION, 0),
        }
        return render(request, "adjudication/reapply_confirm.html", context)
    summary = aggregation.reapply(actor=request.user)
    messages.success(
        request,
        f"Aggregation policies re-applied to {summary['railcars']} railcar(s) not yet final: "
        f"{summary.get(Consensus.Outcome.FINAL, 0)} became final, "
        f"{summary.get(Consensus.Outcome.ADJUDICATION, 0)} need adjudication, "
        f"{summary.get('skipped', 0)} skipped.",
    )
    return redirect("adjudication:queue")


def _initial(consensus: Consensus | None) -> dict[str, object]:
    if consensus is None:
        return {}
    initial: dict[str, object] = {"contamination_pct": aggregation.one_decimal(consensus.mean_pct)}
    if consensus.majority_grade:
        initial["grade"] = consensus.majority_grade
    return initial


def _render_case(
    request: HttpRequest, case: AdjudicationCase, form: DecisionForm | None, status: int = 200
) -> HttpResponse:
    consensus = _consensus(case)
    raters, evidence = case_evidence(case)
    if form is None and case.status == Status.OPEN:
        form = DecisionForm(initial=_initial(consensus))
    following = decisions.next_case(request.user, after=case)
    context = {
        "case": case,
        "consensus": consensus,
        "reasons": _reasons(case.reasons),
        "reopen_note": decisions.reopen_note(case=case),
        "std_shown": std_against_threshold(consensus.std_pct, consensus.std_threshold)
        if consensus is not None
        else None,
        "raters": raters,
        "evidence": evidence,
        "estimate": model_estimate(case.railcar_id),
        "form": form if case.status == Status.OPEN else None,
        "final_label": current_label(railcar_id=case.railcar_id),
        "next_case": following,
        "timeline_url": reverse("operations:railcar-timeline", args=[case.railcar_id])
        if has_role(request.user, Role.ADMIN)
        else None,
    }
    return render(request, "adjudication/case.html", context, status=status)


def _refuse_own_rating(request: HttpRequest, case: AdjudicationCase) -> HttpResponse:
    context = {
        "case": case,
        "refused": True,
        "next_case": decisions.next_case(request.user, after=case),
    }
    return render(request, "adjudication/case.html", context, status=403)


def _closed_message(case_id: int, attempted: dict[str, Any]) -> str:
    case = AdjudicationCase.objects.select_related("decided_by").get(pk=case_id)
    yours = (
        f"{attempted['contamination_pct']} %, {attempted['grade']}, "
        f"{RationaleCode(attempted['rationale_code']).label}"
        if attempted
        else "nothing valid"
    )
    if case.status == Status.WITHDRAWN:
        why = "was withdrawn: under the current policies its consensus became final"
    else:
        who = case.decided_by.get_username() if case.decided_by else "someone"
        why = f"was already decided by {who}"
    return f"Case {case_id} {why}. Your decision ({yours}) was not recorded."


def _decide(request: HttpRequest, case: AdjudicationCase) -> HttpResponse:
    form = DecisionForm(request.POST)
    valid = form.is_valid()
    if case.status != Status.OPEN:
        messages.error(request, _closed_message(case.pk, form.cleaned_data if valid else {}))
        return redirect("adjudication:case", case_id=case.pk)
    if not valid:
        return _render_case(request, case, form, status=400)
    try:
        label = decisions.decide(case_id=case.pk, actor=request.user, **form.cleaned_data)
    except decisions.CaseClosed:
        messages.error(request, _closed_message(case.pk, form.cleaned_data))
        return redirect("adjudication:case", case_id=case.pk)
    except decisions.OwnRating:
        return _refuse_own_rating(request, case)
    except ValueError as exc:
        form.add_error(None, str(exc))
        return _render_case(request, case, form, status=400)
    messages.success(
        request,
        f"Case {case.pk} decided: {label.contamination_pct} %, {label.grade} "
        f"({RationaleCode(form.cleaned_data['rationale_code']).label}).",
    )
    following = decisions.next_case(request.user)
    if following is None:
        return redirect("adjudication:queue")
    return redirect("adjudication:case", case_id=following.pk)


@require_http_methods(["GET", "POST"])
@role_required(*REVIEWERS)
def case(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_object_or_404(
        AdjudicationCase.objects.select_related("railcar", "decided_by"), pk=case_id
    )
    if decisions.rated_by(request.user, [case.railcar_id]):
        return _refuse_own_rating(request, case)
    if request.method == "POST":
        return _decide(request, case)
    return _render_case(request, case, None)


@require_POST
@role_required(*REVIEWERS)
def reopen(request: HttpRequest, railcar_id: int) -> HttpResponse:
    """Send a railcar with a final label back to adjudication, with a reason."""
    railcar = get_object_or_404(Railcar, pk=railcar_id)
    back = request.POST.get("back") == "timeline" and has_role(request.user, Role.ADMIN)
    try:
        case = decisions.reopen(
            railcar_id=railcar.pk, actor=request.user, reason=request.POST.get("reason", "")
        )
    except (ValueError, decisions.NotFinal) as exc:
        messages.error(request, str(exc) or "Only a railcar with a final label can be reopened.")
        if back:
            return redirect("operations:railcar-timeline", railcar_id=railcar.pk)
        return redirect("adjudication:queue")
    messages.success(request, f"Railcar reopened as case {case.pk}.")
    if back:
        return redirect("operations:railcar-timeline", railcar_id=railcar.pk)
    return redirect("adjudication:case", case_id=case.pk)


@require_GET
@role_required(*REVIEWERS)
def frame_image(request: HttpRequest, case_id: int, frame_uid: str) -> HttpResponse:
    """A frame of the case's railcar, served like the annotators' images
    (`frame_image_response`); a frame without its file is answered like one not in the case."""
    railcar_id = get_object_or_404(AdjudicationCase, pk=case_id).railcar_id
    frame = Frame.objects.filter(uid=frame_uid, railcar_id=railcar_id).first()
    if frame is None:
        raise Http404("no such frame in this case")
    try:
        return frame_image_response(frame=frame)
    except FrameFileMissing as exc:
        raise Http404("no such frame in this case") from exc
