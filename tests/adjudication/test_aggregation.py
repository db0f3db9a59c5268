"""The aggregation rule and its bookkeeping: thresholds, ties, provenance, idempotence."""

import queue
from decimal import Decimal

import pytest

from adjudication import aggregation
from adjudication.aggregation import NO_GRADE_MAJORITY, STD_ABOVE_THRESHOLD, RatingInput, compute
from adjudication.models import AdjudicationCase, Consensus, FinalLabel
from adjudication.policies import STD_KIND, STD_THRESHOLD, AggregationPolicy
from labeling import annotation, pool
from labeling.models import Railcar
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.adjudication.factories import rated_railcar
from tests.celery_worker import wait_for
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

SAMPLE = AggregationPolicy(std_threshold=0.4, std_kind="sample", method="mean")
POPULATION = AggregationPolicy(std_threshold=0.4, std_kind="population", method="mean")


def inputs(values, grades=None):
    grades = grades or ["3A"] * len(values)
    return [
        RatingInput(i, 100 + i, float(v), g)
        for i, (v, g) in enumerate(zip(values, grades, strict=True))
    ]


@pytest.mark.parametrize(
    ("values", "policy", "to_adjudication"),
    [
        ([10.0, 10.0, 10.0], SAMPLE, False),
        # Exactly at the threshold: a sample STD of 0.4 (0.40000000000000036 in floating point)
        # is not above it.
        ([10.0, 10.4, 10.8], SAMPLE, False),
        ([10.0, 10.4, 10.9], SAMPLE, True),  # 0.451
        ([10.0, 10.5, 10.9], SAMPLE, True),  # 0.451 sample ...
        ([10.0, 10.5, 10.9], POPULATION, False),  # ... 0.368 population
        ([9.9, 10.4, 10.9], POPULATION, True),  # 0.408
        ([0.0, 0.0, 0.1], SAMPLE, False),
        ([0.0, 50.0, 100.0], SAMPLE, True),
    ],
)
def test_std_threshold_at_and_around(values, policy, to_adjudication):
    result = compute(inputs(values), policy)
    assert (STD_ABOVE_THRESHOLD in result.reasons) is to_adjudication
    assert result.final is not to_adjudication


def test_sample_and_population_std_are_what_they_say():
    values = [10.0, 10.5, 10.9]
    assert compute(inputs(values), SAMPLE).std_pct == pytest.approx(0.45092, abs=1e-5)
    assert compute(inputs(values), POPULATION).std_pct == pytest.approx(0.36818, abs=1e-5)
    assert compute(inputs(values), SAMPLE).mean_pct == pytest.approx(10.46667, abs=1e-5)


@pytest.mark.parametrize(
    ("grades", "winner"),
    [
        (["3A", "3A", "3A"], "3A"),
        (["3A", "3A1", "3A"], "3A"),
        (["3A", "3A1", "3AH"], ""),  # three-way tie
        (["3A", "3A", "3A1", "3A1"], ""),  # 2-2
        (["3A", "3A", "3A1", "3AH"], ""),  # a plurality is not a majority
        (["cast iron", "cast iron", "cast iron", "3A"], "cast iron"),
        (["3AH"], "3AH"),
    ],
)
def test_grade_majority_and_ties(grades, winner):
    result = compute(inputs([5.0] * len(grades), grades), SAMPLE)
    assert result.majority_grade == winner
    assert (NO_GRADE_MAJORITY in result.reasons) is (winner == "")


def test_both_reasons_and_the_queue_order_score():
    split = compute(inputs([1.0, 3.0, 5.0], ["3A", "3A1", "3AH"]), SAMPLE)
    assert split.reasons == [STD_ABOVE_THRESHOLD, NO_GRADE_MAJORITY]
    assert split.disagreement(0.4) == pytest.approx(2.0 / 0.4 + 1.0)
    calm = compute(inputs([1.0, 1.0, 1.2], ["3A", "3A1", "3AH"]), SAMPLE)
    assert calm.reasons == [NO_GRADE_MAJORITY]
    assert calm.disagreement(0.4) < split.disagreement(0.4)


@pytest.mark.django_db(transaction=True)
def test_agreeing_raters_give_a_final_label_with_its_provenance():
    railcar, raters = rated_railcar(["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"], prefix="p")

    assert railcar.status == Railcar.Status.LABELED
    label = FinalLabel.objects.get(railcar=railcar, superseded_at=None)
    assert label.contamination_pct == Decimal("4.1")
    assert label.grade == "3A"
    assert label.source == FinalLabel.Source.CONSENSUS
    assert label.method == "mean"
    assert label.std_pct == pytest.approx(0.1)
    assert sorted(label.ratings.values_list("annotator", flat=True)) == [u.pk for u in raters]
    provenance = label.provenance
    assert provenance["policy"] == {"std_threshold": 0.4, "std_kind": "sample", "method": "mean"}
    assert [r["contamination_pct"] for r in provenance["ratings"]] == [4.0, 4.2, 4.1]
    assert provenance["grade_votes"] == {"3A": 2, "3A1": 1}
    assert not AdjudicationCase.objects.filter(railcar=railcar).exists()
    actions = list(
        AuditEvent.objects.filter(action__in=["aggregation.computed", "final_label.set"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["aggregation.computed", "final_label.set"]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_disagreeing_raters_open_one_case_and_no_label():
    railcar, _ = rated_railcar(["2.0", "4.0", "3.0"], ["3A", "3A", "3A"], prefix="d")

    assert railcar.status == Railcar.Status.IN_ADJUDICATION
    case = AdjudicationCase.objects.get(railcar=railcar)
    assert case.status == AdjudicationCase.Status.OPEN
    assert case.reasons == [STD_ABOVE_THRESHOLD]
    assert case.disagreement == pytest.approx(1.0 / 0.4)
    assert not FinalLabel.objects.filter(railcar=railcar).exists()
    consensus = Consensus.objects.get(railcar=railcar)
    assert consensus.outcome == Consensus.Outcome.ADJUDICATION
    assert consensus.mean_pct == pytest.approx(3.0)


@pytest.mark.django_db(transaction=True)
def test_a_railcar_with_an_excluded_frame_aggregates_and_says_so():
    railcar, _ = rated_railcar(
        ["7.0", "7.1", "7.2"], ["3AH", "3AH", "3AH"], prefix="x", exclude_first_frame_by=[1]
    )

    label = FinalLabel.objects.get(railcar=railcar)
    first_frame = railcar.frames.order_by("index").first()
    excluded = [r["excluded_frames"] for r in label.provenance["ratings"]]
    assert excluded == [[], [[first_frame.pk, "blur"]], []]
    assert label.contamination_pct == Decimal("7.1")


@pytest.mark.django_db(transaction=True)
def test_rerunning_aggregation_changes_nothing():
    railcar, _ = rated_railcar(["1.0", "1.0", "1.1"], ["3A", "3A", "3A"], prefix="i")
    events = AuditEvent.objects.count()

    for _ in range(3):
        aggregation.aggregate_railcar(railcar_id=railcar.pk)

    assert FinalLabel.objects.filter(railcar=railcar).count() == 1
    assert AuditEvent.objects.count() == events

    disputed, _ = rated_railcar(["1.0", "5.0", "9.0"], ["3A", "3A", "3A"], prefix="j")
    events = AuditEvent.objects.count()
    for _ in range(3):
        aggregation.aggregate_railcar(railcar_id=disputed.pk)
    assert AdjudicationCase.objects.filter(railcar=disputed).count() == 1
    assert AuditEvent.objects.count() == events


@pytest.mark.django_db(transaction=True)
def test_concurrent_final_ratings_and_reruns_give_one_label(on_postgresql):
    railcar = pool_railcar(raters=3)
    raters = annotators(3, prefix="c")
    leases = [pool.next_assignment(annotator=r) for r in raters]
    assert all(lease.railcar_id == railcar.pk for lease in leases)
    work = queue.SimpleQueue()
    for rater, lease, value in zip(raters, leases, ["3.0", "3.1", "3.2"], strict=True):
        work.put((rater, lease, value, "3A1"))

    def submit():
        rater, lease, value, grade = work.get_nowait()
        annotation.submit_rating(
            uid=lease.uid,
            annotator=rater,
            contamination_pct=Decimal(value),
            grade=grade,
            seconds_spent=30,
        )
        # Each thread also re-runs the aggregation, as a redelivered task would.
        return aggregation.aggregate_railcar(railcar_id=railcar.pk)

    run_at_once(submit, threads=3)

    assert FinalLabel.objects.filter(railcar=railcar).count() == 1
    assert AuditEvent.objects.filter(action="railcar.rated").count() == 1
    assert AuditEvent.objects.filter(action="aggregation.computed").count() == 1
    assert FinalLabel.objects.get(railcar=railcar).contamination_pct == Decimal("3.1")
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_changed_threshold_reapplies_only_to_railcars_not_final(admin_user):
    labeled, _ = rated_railcar(["5.0", "5.0", "5.0"], ["3A", "3A", "3A"], prefix="f")
    disputed, _ = rated_railcar(["5.0", "6.0", "5.5"], ["3A", "3A", "3A"], prefix="g")
    hopeless, _ = rated_railcar(["5.0", "6.0", "5.5"], ["3A", "3A1", "3AH"], prefix="h")
    label_before = FinalLabel.objects.get(railcar=labeled)

    set_policy(key=STD_THRESHOLD, value="0.6", actor=admin_user)
    summary = aggregation.reapply(actor=admin_user)

    assert summary == {"railcars": 2, "final": 1, "adjudication": 1}
    disputed.refresh_from_db()
    assert disputed.status == Railcar.Status.LABELED
    case = AdjudicationCase.objects.get(railcar=disputed)
    assert case.status == AdjudicationCase.Status.WITHDRAWN
    label = FinalLabel.objects.get(railcar=disputed)
    assert label.provenance["policy"]["std_threshold"] == 0.6
    assert label.contamination_pct == Decimal("5.5")
    # The grade split still needs a senior inspector, whatever the spread.
    hopeless_case = AdjudicationCase.objects.get(railcar=hopeless)
    assert hopeless_case.status == AdjudicationCase.Status.OPEN
    assert hopeless_case.reasons == [NO_GRADE_MAJORITY]
    # A final label is never recomputed.
    assert FinalLabel.objects.filter(railcar=labeled).get() == label_before
    event = AuditEvent.objects.get(action="aggregation.reapplied")
    assert event.actor == admin_user
    assert event.payload["policy"]["std_threshold"] == 0.6
    assert event.payload["final"] == 1


@pytest.mark.django_db(transaction=True)
def test_the_std_kind_policy_decides_a_borderline_railcar(admin_user):
    set_policy(key=STD_KIND, value="population", actor=admin_user)
    population, _ = rated_railcar(["10.0", "10.5", "10.9"], ["3A"] * 3, prefix="pp")
    set_policy(key=STD_KIND, value="sample", actor=admin_user)
    sample, _ = rated_railcar(["10.0", "10.5", "10.9"], ["3A"] * 3, prefix="ss")

    assert population.status == Railcar.Status.LABELED
    assert sample.status == Railcar.Status.IN_ADJUDICATION


@pytest.mark.django_db(transaction=True)
def test_a_railcar_not_fully_rated_is_not_aggregated():
    railcar = pool_railcar(raters=3)
    (rater,) = annotators(1, prefix="n")
    lease = pool.next_assignment(annotator=rater)
    annotation.submit_rating(
        uid=lease.uid, annotator=rater, contamination_pct=Decimal("2.0"), grade="3A",
        seconds_spent=10,
    )  # fmt: skip

    assert aggregation.aggregate_railcar(railcar_id=railcar.pk) is None
    assert aggregation.aggregate_railcar(railcar_id=10**9) is None
    assert not Consensus.objects.filter(railcar=railcar).exists()


def test_policy_choices_refuse_anything_else():
    from django.core.exceptions import ValidationError

    from scrapannot.policy import registered

    for bad in ["median", "", " ", "SAMPLE", 1, None, "sample; drop table"]:
        with pytest.raises(ValidationError):
            registered()[STD_KIND].clean(bad)
    assert registered()[STD_KIND].clean(" population ") == "population"


def test_a_worker_aggregates_once_the_last_rating_arrives_through_the_api(
    on_postgresql, celery_worker
):
    from rest_framework.test import APIClient

    celery_worker.start(queues="celery")
    railcar = pool_railcar(raters=3)
    for i, rater in enumerate(annotators(3, prefix="w")):
        client = APIClient()
        client.force_authenticate(rater)
        uid = client.post("/api/v1/assignments/next/").json()["id"]
        body = {"contamination_pct": f"6.{i}", "grade": "3A", "seconds_spent": 40}
        response = client.post(f"/api/v1/assignments/{uid}/rating/", body, format="json")
        assert response.status_code == 201, response.content
        # Nothing about the consensus comes back to the rater, not even on the last rating.
        assert set(response.json()) == {"contamination_pct", "grade"}

    wait_for(
        lambda: FinalLabel.objects.filter(railcar=railcar).exists(),
        what="the worker to aggregate the railcar",
    )
    assert FinalLabel.objects.get(railcar=railcar).contamination_pct == Decimal("6.1")
    assert Railcar.objects.get(pk=railcar.pk).status == Railcar.Status.LABELED


def test_raters_are_lettered_past_z_without_repeating():
    from adjudication.raters import rater_letter

    letters = [rater_letter(i) for i in range(60)]
    assert letters[:3] == ["A", "B", "C"] and letters[25:28] == ["Z", "AA", "AB"]
    assert len(set(letters)) == 60
