"""Gold railcars: their ratings never become a label, they score raters and anchor the
calibration; gold truth comes in by the page, the API and the command, audited, for admins only."""

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from adjudication import aggregation, calibration
from adjudication.gold_scores import GoldRating, score
from adjudication.models import AdjudicationCase, Consensus, FinalLabel
from labeling import annotation, pool
from labeling.models import GoldRailcar, Railcar
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.conftest import client_for, user_with_roles
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.gold_factories import make_gold, rate_every_gold

pytestmark = pytest.mark.django_db


def _rate_gold(gold: GoldRailcar, people, values, grades=None) -> None:
    """Each person leases until the gold pick comes, then rates it."""
    set_policy(key="pool.gold_share", value=0.5, actor=None)
    for k, (person, value) in enumerate(zip(people, values, strict=True)):
        for _ in range(200):
            lease = pool.next_assignment(annotator=person)
            if lease.railcar_id == gold.railcar_id:
                break
            pool.release_assignment(uid=lease.uid, annotator=person, reason="other")
        annotation.submit_rating(
            uid=lease.uid, annotator=person, contamination_pct=Decimal(str(value)),
            grade=(grades or ["3A"] * len(values))[k], seconds_spent=40,
        )  # fmt: skip


def test_the_ratings_of_a_gold_railcar_never_become_a_consensus_or_a_label(
    django_capture_on_commit_callbacks,
):
    gold = make_gold(pool_railcar(raters=3), pct="20.0")
    people = annotators(4)
    for _ in range(20):
        pool_railcar(raters=4)
    with django_capture_on_commit_callbacks(execute=True):
        _rate_gold(gold, people, [10.0, 20.0, 30.0, 25.0])

    assert aggregation.aggregate_railcar(railcar_id=gold.railcar_id) is None
    # Even a railcar that went gold after its raters were done is left alone.
    assert not Consensus.objects.filter(railcar_id=gold.railcar_id).exists()
    assert not FinalLabel.objects.filter(railcar_id=gold.railcar_id).exists()
    assert not AdjudicationCase.objects.filter(railcar_id=gold.railcar_id).exists()
    assert aggregation.reapply_preview().get("final", 0) == 0


def test_a_rated_railcar_made_gold_before_aggregation_is_not_aggregated():
    railcar = pool_railcar(raters=1)
    (person,) = annotators(1)
    lease = pool.next_assignment(annotator=person)
    annotation.submit_rating(
        uid=lease.uid, annotator=person, contamination_pct=Decimal("5.0"), grade="3A",
        seconds_spent=10,
    )  # fmt: skip
    assert Railcar.objects.get(pk=railcar.pk).status == Railcar.Status.RATED
    make_gold(railcar)

    assert aggregation.aggregate_railcar(railcar_id=railcar.pk) is None
    assert not FinalLabel.objects.exists()


def _rows(rater: str, values, truths, *, grades=None, start=datetime(2026, 1, 5, tzinfo=UTC)):
    return [
        GoldRating(rater, i, v, (grades or ["3A"] * len(values))[i], t, "3A",
                   start + timedelta(days=3 * i))
        for i, (v, t) in enumerate(zip(values, truths, strict=True))
    ]  # fmt: skip


def test_a_rater_is_scored_on_bias_scale_noise_and_grade_accuracy_against_gold():
    truths = [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    # Reads 1 point high and 20 % wide, with no noise; names the grade right 4 times in 6.
    values = [1.0 + 1.2 * t for t in truths]
    grades = ["3A", "3A", "3AH", "3A", "cast iron", "3A"]

    (s,) = score(_rows("rita", values, truths, grades=grades))

    assert s.n == 6
    assert s.scale == pytest.approx(1.2)
    assert s.bias == pytest.approx(1.0 + 0.2 * 17.5)
    assert s.noise_sd == pytest.approx(0.0, abs=1e-9)
    assert s.mae == pytest.approx(s.bias)
    assert s.grade_accuracy == pytest.approx(4 / 6)


def test_a_rater_who_starts_to_read_high_shows_it_in_the_drift():
    truths = [10.0] * 8
    values = [10.0, 10.0, 10.0, 10.0, 12.0, 12.0, 12.0, 12.0]
    (s,) = score(_rows("drifty", values, truths), period="week")

    biases = [p.bias for p in s.drift if p.bias is not None]
    assert biases[0] == pytest.approx(0.0) and biases[-1] == pytest.approx(2.0)


def test_gold_ratings_score_raters_on_the_gold_page(django_capture_on_commit_callbacks):
    gold = make_gold(pool_railcar(), pct="20.0", grade="3AH")
    people = annotators(2)
    for _ in range(20):
        pool_railcar(raters=2)
    with django_capture_on_commit_callbacks(execute=True):
        _rate_gold(gold, people, [22.0, 19.0], grades=["3AH", "3A"])
    senior = user_with_roles("senior-sam", Role.SENIOR_INSPECTOR)

    page = client_for(senior).get("/adjudication/gold/")

    assert page.status_code == 200
    text = page.content.decode()
    assert "rater0" in text and "rater1" in text
    assert "2.00" in text and "-1.00" in text  # each one's bias
    assert 'id="gold-import"' not in text  # importing is for admins


def test_gold_truth_anchors_the_calibration():
    # Forty gold railcars rated by two raters, read by one of them 2 points high.
    people = annotators(2)
    observations = []
    anchors = {}
    for i in range(40):
        truth = 5.0 + 2.0 * i
        anchors[i] = truth
        observations += [(i, people[0].pk, truth + 2.0), (i, people[1].pk, truth)]

    fit = calibration.fit(observations, anchors=anchors)

    assert fit.anchors == 40
    assert fit.calibrations[people[0].pk].offset == pytest.approx(2.0, abs=0.1)
    assert fit.calibrations[people[1].pk].offset == pytest.approx(0.0, abs=0.1)


def test_the_stored_calibration_takes_gold_truth_as_anchors(django_capture_on_commit_callbacks):
    people = annotators(2)
    for _ in range(80):
        pool_railcar(raters=2, with_files=False)
    for i in range(10):
        make_gold(pool_railcar(with_files=False), pct=f"{5 + 2 * i}.0")
    with django_capture_on_commit_callbacks(execute=True):
        rate_every_gold(people, lambda k, truth: truth + (2.0 if k == 0 else 0.0))

    calibration.estimate_and_store(actor=None)

    event = AuditEvent.objects.filter(action="calibration.estimated").latest("id")
    assert event.payload["anchors"] == 10
    latest = calibration.latest_calibrations([p.pk for p in people])
    # Read on the gold scale (not renormalized to the raters' average): one reads 2 points high.
    assert latest[people[0].pk].offset - latest[people[1].pk].offset == pytest.approx(2.0, abs=0.1)
    assert latest[people[1].pk].offset == pytest.approx(0.0, abs=0.1)


# --- importing gold truth ------------------------------------------------------------------------


def test_an_admin_imports_gold_truth_by_api_with_its_source_audited(admin_user):
    railcar = pool_railcar()
    client = APIClient()
    client.force_authenticate(admin_user)

    response = client.post(
        "/api/v1/gold/",
        {"truths": [{"railcar": railcar.real_id, "contamination_pct": "7.4", "grade": "3AH",
                     "source": "hand_sorted", "reference": "SHEET-12"}]},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.content
    gold = GoldRailcar.objects.get(railcar=railcar)
    assert (gold.contamination_pct, gold.grade, gold.source) == (
        Decimal("7.4"),
        "3AH",
        "hand_sorted",
    )
    event = AuditEvent.objects.get(action="gold.imported")
    assert event.payload["source"] == "hand_sorted" and event.payload["reference"] == "SHEET-12"
    assert event.actor_id == admin_user.pk


def test_an_unknown_railcar_imports_nothing(admin_user):
    railcar = pool_railcar()
    client = APIClient()
    client.force_authenticate(admin_user)
    truth = {"contamination_pct": "7.4", "grade": "3A", "source": "lab_analysis"}
    truths = [truth | {"railcar": str(railcar.pk)}, truth | {"railcar": "RC-NOWHERE"}]

    response = client.post("/api/v1/gold/", {"truths": truths}, format="json")

    assert response.status_code == 400
    assert not GoldRailcar.objects.exists()


@pytest.mark.parametrize("role", [Role.ANNOTATOR, Role.SENIOR_INSPECTOR, Role.OPERATOR])
def test_only_admins_may_import_gold_truth_by_api(role):
    railcar = pool_railcar()
    client = APIClient()
    client.force_authenticate(user_with_roles("someone", role))
    body = {"truths": [{"railcar": str(railcar.pk), "contamination_pct": "7.4", "grade": "3A",
                        "source": "lab_analysis"}]}  # fmt: skip

    assert client.post("/api/v1/gold/", body, format="json").status_code == 403
    assert not GoldRailcar.objects.exists()


def test_an_admin_imports_gold_truth_on_the_page_and_corrects_it(admin_user):
    railcar = pool_railcar()
    client = client_for(admin_user)
    form = {"railcar": str(railcar.pk), "contamination_pct": "3.2", "grade": "3A",
            "source": "senior_panel", "reference": "minutes 2026-11"}  # fmt: skip

    assert client.get("/adjudication/gold/").status_code == 200
    assert client.post("/adjudication/gold/import/", form).status_code == 302
    assert (
        client.post("/adjudication/gold/import/", form | {"contamination_pct": "3.4"}).status_code
        == 302
    )

    assert GoldRailcar.objects.get(railcar=railcar).contamination_pct == Decimal("3.4")
    actions = AuditEvent.objects.filter(action__startswith="gold.").values_list("action", flat=True)
    assert list(actions) == ["gold.imported", "gold.corrected"]
    bad = client.post("/adjudication/gold/import/", form | {"railcar": "RC-NOWHERE"})
    assert bad.status_code == 400 and "no railcar" in bad.content.decode()

    assert client.post(f"/adjudication/gold/{railcar.pk}/retire/").status_code == 302
    assert GoldRailcar.objects.get(railcar=railcar).retired_at is not None
    assert AuditEvent.objects.filter(action="gold.retired").count() == 1


def test_annotators_may_not_see_the_gold_page_or_import(annotator):
    railcar = pool_railcar()
    client = client_for(annotator)
    form = {"railcar": str(railcar.pk), "contamination_pct": "3.2", "grade": "3A",
            "source": "lab_analysis"}  # fmt: skip

    assert client.get("/adjudication/gold/").status_code == 403
    assert client.post("/adjudication/gold/import/", form).status_code == 403
    assert client.post(f"/adjudication/gold/{railcar.pk}/retire/").status_code == 403
    assert not GoldRailcar.objects.exists()


def test_seniors_see_the_gold_page_but_may_not_import(senior):
    railcar = pool_railcar()
    client = client_for(senior)
    form = {"railcar": str(railcar.pk), "contamination_pct": "3.2", "grade": "3A",
            "source": "lab_analysis"}  # fmt: skip

    assert client.get("/adjudication/gold/").status_code == 200
    assert client.post("/adjudication/gold/import/", form).status_code == 403
    assert not GoldRailcar.objects.exists()


def test_the_command_imports_gold_truth_from_csv(tmp_path):
    a, b = pool_railcar(), pool_railcar()
    path = tmp_path / "gold.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["railcar", "contamination_pct", "grade", "source", "reference"])
        writer.writerow([a.real_id, "4.5", "3A", "lab_analysis", "LAB-1"])
        writer.writerow([str(b.pk), "9", "cast iron", "hand_sorted", ""])

    call_command("import_gold", str(path))

    assert GoldRailcar.objects.get(railcar=b).contamination_pct == Decimal("9.0")
    event = AuditEvent.objects.filter(action="gold.imported").first()
    assert event.actor_label == "command:import_gold"
    path.write_text("railcar,contamination_pct,grade,source\nRC-NOWHERE,1,3A,lab_analysis\n")
    with pytest.raises(CommandError):
        call_command("import_gold", str(path))


@pytest.mark.parametrize("reference", ["zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "9" * 30, ""])
def test_a_reference_that_names_no_railcar_is_refused_cleanly(admin_user, reference):
    client = APIClient()
    client.force_authenticate(admin_user)
    truth = {"railcar": reference, "contamination_pct": "1.0", "grade": "3A",
             "source": "lab_analysis"}  # fmt: skip

    assert client.post("/api/v1/gold/", {"truths": [truth]}, format="json").status_code == 400


def test_a_railcar_is_found_by_its_uid_too(admin_user):
    railcar = pool_railcar()
    make_gold(railcar)  # by id
    from labeling.gold import find_railcar

    assert find_railcar(str(railcar.uid)) == railcar
