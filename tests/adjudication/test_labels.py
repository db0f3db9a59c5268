"""The final label's owner (adjudication.labels): one current label per railcar, a new one
supersedes and keeps the old row, the railcar's status follows, one audit event each time, and
a consensus and a decision write the same provenance shape."""

import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from adjudication import decisions, labels
from adjudication.models import AdjudicationCase, FinalLabel
from labeling.models import Railcar
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rated_railcar

ROOT = Path(__file__).resolve().parents[2]
APPS = ("scrapannot", "labeling", "adjudication", "mlloop", "operations")
PROVENANCE_KEYS = {
    "source", "method", "ratings", "mean_pct", "std_pct", "calibrated_pct",
    "calibrated_std_pct", "grade_votes", "policy", "calibrations", "reasons", "rationale_code",
    "note", "supersedes",
}  # fmt: skip
RATING_KEYS = {"rating", "contamination_pct", "grade", "excluded_frames"}
POLICY_KEYS = {"std_threshold", "std_kind", "method"}
EVENT_KEYS = {
    "railcar", "final_label", "contamination_pct", "grade", "source", "method", "case",
    "rationale_code", "note", "supersedes",
}  # fmt: skip


@pytest.fixture
def rated(db, django_capture_on_commit_callbacks) -> Callable[..., Railcar]:
    """A railcar rated through the real pool; aggregation runs when the last rating commits."""
    prefixes = iter(f"lab{n}-" for n in range(100))

    def make(values: Sequence[str], grades: Sequence[str], **kwargs: object) -> Railcar:
        with django_capture_on_commit_callbacks(execute=True):
            railcar, _ = rated_railcar(values, grades, prefix=next(prefixes), **kwargs)
        railcar.refresh_from_db()
        return railcar

    return make


def decide(case: AdjudicationCase, senior: User, pct: str = "6.5") -> FinalLabel:
    return decisions.decide(
        case_id=case.pk, actor=senior, contamination_pct=Decimal(pct), grade="3A1",
        rationale_code="frame_evidence",
    )  # fmt: skip


def events_on(obj: object, action: str) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=action, object_type=obj._meta.label_lower, object_id=str(obj.pk)
        )
    )


def test_a_final_consensus_sets_the_label_labels_the_railcar_and_records_one_event(rated):
    railcar = rated(["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"])

    label = labels.current_label(railcar_id=railcar.pk)
    assert label is not None and label.source == FinalLabel.Source.CONSENSUS
    assert label.decided_by is None and label.superseded_at is None
    assert railcar.status == Railcar.Status.LABELED
    (event,) = events_on(label, "final_label.set")
    assert set(event.payload) == EVENT_KEYS
    assert (event.payload["final_label"], event.payload["supersedes"]) == (label.pk, None)
    assert not AuditEvent.objects.filter(action="adjudication.decided").exists()


def test_a_railcar_without_a_label_has_no_current_one(rated):
    disputed = rated(["2.0", "4.0", "3.0"], ["3A", "3A", "3A"])

    assert labels.current_label(railcar_id=disputed.pk) is None
    assert disputed.status == Railcar.Status.IN_ADJUDICATION


def test_a_decision_supersedes_the_current_label_and_keeps_the_old_row(rated, senior, admin_user):
    railcar = rated(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"])
    first = labels.current_label(railcar_id=railcar.pk)
    case = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="snow on the load")

    label = decide(case, senior)

    first.refresh_from_db()
    railcar.refresh_from_db()
    assert first.superseded_at == label.decided_at
    assert labels.current_label(railcar_id=railcar.pk) == label
    assert list(FinalLabel.objects.current().filter(railcar=railcar)) == [label]
    assert FinalLabel.objects.filter(railcar=railcar).count() == 2
    assert (label.decided_by, label.case) == (senior, case)
    assert railcar.status == Railcar.Status.LABELED
    (event,) = events_on(case, "adjudication.decided")
    assert set(event.payload) == EVENT_KEYS
    assert event.payload["supersedes"] == first.pk == label.provenance["supersedes"]
    assert event.payload["rationale_code"] == label.provenance["rationale_code"]
    assert not events_on(label, "final_label.set")
    assert verify_chain().ok


def test_sending_to_adjudication_keeps_the_current_label(rated, admin_user):
    railcar = rated(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"])
    label = labels.current_label(railcar_id=railcar.pk)

    case = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="wrong grade")

    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.IN_ADJUDICATION
    assert case.status == AdjudicationCase.Status.OPEN and case.reasons == [decisions.REOPENED]
    assert labels.current_label(railcar_id=railcar.pk) == label


def test_a_consensus_and_a_decision_write_the_same_provenance_shape(rated, senior):
    agreed = rated(["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"], exclude_first_frame_by=[1])
    disputed = rated(["2.0", "4.0", "3.0"], ["3A", "3A", "3A"], exclude_first_frame_by=[0])
    case = AdjudicationCase.objects.get(railcar=disputed)

    consensus = labels.current_label(railcar_id=agreed.pk).provenance
    decision = decide(case, senior).provenance

    for provenance in (consensus, decision):
        assert set(provenance) == PROVENANCE_KEYS
        assert all(set(r) == RATING_KEYS for r in provenance["ratings"])
        assert [type(r["contamination_pct"]) for r in provenance["ratings"]] == [float] * 3
        assert set(provenance["policy"]) == POLICY_KEYS
    assert (consensus["source"], consensus["method"]) == ("consensus", "mean")
    assert (decision["source"], decision["method"]) == ("adjudication", "adjudication")
    assert [r["contamination_pct"] for r in decision["ratings"]] == [2.0, 4.0, 3.0]
    assert [bool(r["excluded_frames"]) for r in decision["ratings"]] == [True, False, False]
    assert decision["grade_votes"] == {"3A": 3} and decision["reasons"] == case.reasons
    assert (decision["rationale_code"], consensus["rationale_code"]) == ("frame_evidence", "")
    assert decision["calibrations"] == {}


def test_a_consensus_label_has_no_case_and_a_decision_needs_one(rated):
    railcar = rated(["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"])

    with pytest.raises(TypeError), transaction.atomic():
        labels.set_final_label(
            railcar=Railcar.objects.select_for_update().get(pk=railcar.pk),
            contamination_pct=Decimal("5.0"), grade="3A",
            source=FinalLabel.Source.ADJUDICATION, method="adjudication",
            rating_ids=[], consensus=None, actor=None, at=timezone.now(),
        )  # fmt: skip

    assert FinalLabel.objects.filter(railcar=railcar).count() == 1


SPELLED_OUT = re.compile(
    r"superseded_at__isnull"
    r"|\.status\s*=\s*(Railcar\.)?Status\.(LABELED|IN_ADJUDICATION)"
    r"|update\(status=(Railcar\.)?Status\.(LABELED|IN_ADJUDICATION)"
)


def test_no_other_module_spells_out_the_current_label_or_moves_the_status_by_hand():
    owners = {ROOT / "adjudication" / "labels.py", ROOT / "adjudication" / "models.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for app in APPS
        for path in sorted((ROOT / app).rglob("*.py"))
        if path not in owners
        and "migrations" not in path.parts
        and SPELLED_OUT.search(path.read_text())
    ]
    assert offenders == []
