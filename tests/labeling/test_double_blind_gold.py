"""Double-blind for gold railcars: an annotator holding a gold railcar and one holding an
ordinary railcar get the same pages, API answers, files and timings, once each one's own ids
(assignment, pseudonym, frames, layers, masks, times) are masked. Nothing served names the gold
truth, its source or its reference.
"""

import re
import statistics
import time
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from labeling import annotation, pool
from labeling.models import Assignment
from scrapannot.policy import set_policy
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.gold_factories import make_gold
from tests.labeling.probe import API, exposed, raw

pytestmark = pytest.mark.django_db

GOLD_PCT, REFERENCE = "47.3", "LAB-REPORT-998877"
FORBIDDEN = [GOLD_PCT, "47,3", REFERENCE, "lab_analysis", "lab analysis", "gold", "Gold", "GOLD"]
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_CSRF = re.compile(r'(csrfmiddlewaretoken" value="|csrftoken=|"csrf": ")[^";\s]+')
_NUMBERS_IN_HEADERS = re.compile(r"(Content-Length: )\d+")
_HTTP_DATE = re.compile(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT")


def _leases() -> tuple[Assignment, Assignment]:
    """Two annotators, each with a railcar of the same shape: one gold, one not."""
    ordinary = pool_railcar(layers=2, frames_per_layer=2, priority=1.0)
    make_gold(pool_railcar(layers=2, frames_per_layer=2), pct=GOLD_PCT, reference=REFERENCE)
    gold_rater, plain_rater = annotators(2)
    set_policy(key="pool.gold_share", value=0.5, actor=None)
    gold_lease = None
    while gold_lease is None:
        lease = pool.next_assignment(annotator=gold_rater)
        if lease.gold_pick:
            gold_lease = lease
        else:
            assert lease.railcar_id == ordinary.pk
            Assignment.objects.filter(pk=lease.pk).delete()  # as if never leased
            ordinary.refresh_from_db()
            type(ordinary).objects.filter(pk=ordinary.pk).update(open_slots=3)
    set_policy(key="pool.gold_share", value=0.0, actor=None)
    plain_lease = pool.next_assignment(annotator=plain_rater)
    assert plain_lease.railcar_id == ordinary.pk and not plain_lease.gold_pick
    return gold_lease, plain_lease


def _own_ids(assignment: Assignment) -> list[str]:
    railcar = assignment.railcar
    ids = [str(assignment.uid), assignment.pseudonym, assignment.annotator.username]
    ids += [str(u) for u in railcar.frames.order_by("index").values_list("uid", flat=True)]
    ids += [str(u) for u in railcar.layers.order_by("index").values_list("uid", flat=True)]
    ids += [str(u) for u in assignment.masks.values_list("uid", flat=True)]
    return ids


def _masked(text: str, assignment: Assignment) -> str:
    for k, value in enumerate(_own_ids(assignment)):
        text = text.replace(value, f"{{id{k}}}")
    text = _HTTP_DATE.sub("{date}", _ISO.sub("{time}", text))
    text = _CSRF.sub(r"\1*", text)
    return _NUMBERS_IN_HEADERS.sub(r"\1*", text)


def _client(assignment: Assignment) -> APIClient:
    client = APIClient()
    client.force_login(assignment.annotator)
    return client


def _pages(assignment: Assignment) -> list[str]:
    uid = assignment.uid
    return ["/", "/annotate/", "/annotate/next/", f"/annotate/{uid}/", f"{API}/{uid}/",
            f"{API}/next/"]  # fmt: skip


def test_a_gold_railcar_reads_like_any_other_in_every_page_and_api_answer():
    gold, plain = _leases()
    answers = {}
    for lease in (gold, plain):
        client = _client(lease)
        answers[lease.pk] = []
        for path in _pages(lease):
            response = client.get(path)
            text = exposed(response)
            assert not [n for n in FORBIDDEN if n in text], (path, lease.gold_pick)
            answers[lease.pk].append((path, response.status_code, _masked(text, lease)))
    for (path, *got), (_, *expected) in zip(answers[gold.pk], answers[plain.pk], strict=True):
        assert got == expected, f"{path} answers differently for a gold railcar"


def test_a_gold_railcars_frames_are_served_alike():
    gold, plain = _leases()
    served = {}
    for lease in (gold, plain):
        client = _client(lease)
        detail = client.get(f"{API}/{lease.uid}/").json()
        frames = [f["id"] for layer in detail["layers"] for f in layer["frames"]]
        heads = []
        for frame in frames:
            response = client.get(f"{API}/{lease.uid}/frames/{frame}/image/")
            assert response.status_code == 200
            assert not [n for n in FORBIDDEN if n.encode() in raw(response)]
            heads.append(
                sorted(
                    (k, _HTTP_DATE.sub("{date}", v))
                    for k, v in response.items()
                    if k != "Content-Length"
                )
            )
        served[lease.gold_pick] = (len(frames), heads)
    assert served[True] == served[False]


def test_rating_a_gold_railcar_answers_like_rating_any_other():
    gold, plain = _leases()
    answers = []
    for lease in (gold, plain):
        response = _client(lease).post(
            f"{API}/{lease.uid}/rating/",
            {"contamination_pct": "30.0", "grade": "3A", "seconds_spent": 12},
            format="json",
        )
        text = exposed(response)
        assert not [n for n in FORBIDDEN if n in text]
        answers.append((response.status_code, _masked(text, lease)))
    assert answers[0] == answers[1]
    assert answers[0][0] in (200, 201)


def test_a_gold_railcar_takes_as_long_to_serve_as_any_other():
    gold, plain = _leases()
    paths = {
        "gold": (_client(gold), f"{API}/{gold.uid}/"),
        "plain": (_client(plain), f"{API}/{plain.uid}/"),
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(35):
        for name, (client, path) in paths.items() if round_ % 2 else reversed(paths.items()):
            start = time.perf_counter()
            assert client.get(path).status_code == 200
            if round_ >= 5:
                times[name].append(time.perf_counter() - start)
    ratio = statistics.median(times["gold"]) / statistics.median(times["plain"])
    assert 1 / 3 < ratio < 3, f"a gold railcar takes {ratio:.2f}x the time of another"


def test_submitting_on_a_gold_railcar_keeps_the_annotators_queue_alike():
    gold, plain = _leases()
    for lease in (gold, plain):
        annotation.submit_rating(
            uid=lease.uid, annotator=lease.annotator, contamination_pct=Decimal("30.0"),
            grade="3A", seconds_spent=9,
        )  # fmt: skip
    pages = [_masked(exposed(_client(lease).get("/annotate/")), lease) for lease in (gold, plain)]
    assert pages[0] == pages[1]


def test_a_gold_lease_takes_as_long_to_hand_out_as_any_other():
    """POST next at the largest gold share, each lease released at once, timed by what it
    turned out to be; railcars enough that every request finds one of either kind."""
    (rater,) = annotators(1, prefix="timer")
    for _ in range(70):
        make_gold(pool_railcar(with_files=False))
    for _ in range(140):
        pool_railcar(with_files=False)
    set_policy(key="pool.gold_share", value=0.5, actor=None)
    client = APIClient()
    client.force_login(rater)
    times: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(110):
        start = time.perf_counter()
        response = client.post(f"{API}/next/")
        elapsed = time.perf_counter() - start
        assert response.status_code == 200
        lease = Assignment.objects.get(uid=response.json()["id"])
        pool.release_assignment(uid=lease.uid, annotator=rater, reason="cannot_judge")
        if round_ >= 6:
            times[lease.gold_pick].append(elapsed)
    assert len(times[True]) >= 15 and len(times[False]) >= 15
    ratio = statistics.median(times[True]) / statistics.median(times[False])
    assert 1 / 2 < ratio < 2, f"a gold lease takes {ratio:.2f}x the time of another"
