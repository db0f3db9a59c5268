"""The senior inspectors' adjudication pages: who gets in, the queue's order, the case page's
evidence (raters by letter only), decisions good and bad, and two inspectors at once."""

import itertools
import json
import queue
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse

from adjudication import decisions
from adjudication.estimates import Estimate, register_provider
from adjudication.models import AdjudicationCase, FinalLabel
from adjudication.policies import STD_THRESHOLD
from labeling import annotation, pool
from labeling import rle as rle_codec
from labeling.models import Assignment, Railcar
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

# Frames of tests.labeling.factories.pool_railcar are 96 x 54; one box per rater, apart.
MASK_BOXES = [(4, 4, 30, 20), (40, 4, 66, 20), (66, 30, 92, 50)]
EXCLUSION_NOTE = "haze over the whole car"
_prefixes = (f"adj{n}-" for n in itertools.count())


def rate_with_evidence(
    railcar: Railcar,
    raters: Sequence[User],
    values: Sequence[str],
    grades: Sequence[str],
    *,
    exclusion_note: str = EXCLUSION_NOTE,
) -> None:
    """Each rater leases the railcar, draws one box mask on layer 1's keyframe (rater i in
    MASK_BOXES[i]), the third rater excludes layer 1's second frame, and all rate it."""
    keyframe, second = railcar.frames.filter(layer__index=1).order_by("index")[:2]
    for i, (rater, value, grade) in enumerate(zip(raters, values, grades, strict=True)):
        assignment = pool.next_assignment(annotator=rater)
        assert assignment is not None and assignment.railcar_id == railcar.pk
        x0, y0, x1, y1 = MASK_BOXES[i % len(MASK_BOXES)]
        pixels = np.zeros((keyframe.height, keyframe.width), dtype=np.uint8)
        pixels[y0:y1, x0:x1] = 1
        annotation.save_mask(
            uid=assignment.uid, annotator=rater, frame_uid=keyframe.uid,
            rle=rle_codec.encode(pixels), engine="test",
            prompts={"points": [[(x0 + x1) / 2, (y0 + y1) / 2]], "labels": [1], "box": None},
        )  # fmt: skip
        if i == 2:
            annotation.exclude_frame(
                uid=assignment.uid, annotator=rater, frame_uid=second.uid,
                code="dust_smoke", note=exclusion_note,
            )  # fmt: skip
        annotation.submit_rating(
            uid=assignment.uid, annotator=rater, contamination_pct=Decimal(value), grade=grade,
            seconds_spent=40 + 10 * i,
        )  # fmt: skip


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def disputed_railcar(
    values: Sequence[str] = ("10.0", "12.0", "14.0"),
    grades: Sequence[str] = ("3A", "3A", "3A1"),
    *,
    raters: Sequence[User] | None = None,
    **kwargs: str,
) -> Railcar:
    """A railcar rated through the real pool and rating path; aggregation runs through the
    real signal, eagerly, once the ratings commit."""
    railcar = pool_railcar(layers=2, frames_per_layer=2, raters=len(values))
    people = list(raters) if raters is not None else annotators(len(values), prefix=next(_prefixes))
    rate_with_evidence(railcar, people, values, grades, **kwargs)
    return railcar


def open_case_of(railcar: Railcar) -> AdjudicationCase:
    return AdjudicationCase.objects.get(railcar=railcar, status=AdjudicationCase.Status.OPEN)


@pytest.fixture
def make_case(db, django_capture_on_commit_callbacks) -> Callable[..., AdjudicationCase]:
    def make(*args: object, **kwargs: object) -> AdjudicationCase:
        with django_capture_on_commit_callbacks(execute=True):
            railcar = disputed_railcar(*args, **kwargs)
        return open_case_of(railcar)

    return make


@pytest.fixture
def case(make_case) -> AdjudicationCase:
    return make_case()


def client_for(user: User | None, **kwargs: object) -> Client:
    client = Client(**kwargs)
    if user is not None:
        client.force_login(user)
    return client


def case_url(case: AdjudicationCase) -> str:
    return reverse("adjudication:case", args=[case.pk])


def image_url(case: AdjudicationCase, frame_uid: object) -> str:
    return reverse("adjudication:case-frame-image", args=[case.pk, frame_uid])


def senior_named(name: str, *extra: Role) -> User:
    user = User.objects.create_user(username=name, password=f"{name}-pass-1")
    for role in (Role.SENIOR_INSPECTOR, *extra):
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    return user


GOOD = {"contamination_pct": "11.5", "grade": "3A1", "rationale_code": "frame_evidence"}


def decided_events() -> int:
    return AuditEvent.objects.filter(action="adjudication.decided").count()


# Who gets in


@pytest.mark.parametrize("who", ["anonymous", "annotator", "plant", "outsider"])
def test_nobody_but_senior_inspectors_and_admins_reaches_any_adjudication_page(who, request, case):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = client_for(user)
    frame = case.railcar.frames.first()
    gets = [reverse("adjudication:queue"), case_url(case), image_url(case, frame.uid)]
    posts = [(case_url(case), GOOD), (reverse("adjudication:reapply"), {})]

    answers = [client.get(url) for url in gets] + [client.post(url, data) for url, data in posts]

    for response in answers:
        if user is None:
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
        else:
            assert response.status_code == 403
        assert str(case.railcar.uid).encode() not in response.content
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    assert not AuditEvent.objects.filter(action="aggregation.reapplied").exists()


@pytest.mark.parametrize("who", ["senior", "admin_user"])
def test_senior_inspectors_and_admins_see_the_queue_the_case_and_its_frames(who, request, case):
    client = client_for(request.getfixturevalue(who))
    frame = case.railcar.frames.first()

    assert client.get(reverse("adjudication:queue")).status_code == 200
    assert client.get(case_url(case)).status_code == 200
    assert client.get(image_url(case, frame.uid)).status_code == 200


def test_only_admins_may_reapply_the_aggregation_policies(senior, admin_user, case):
    set_policy(key=STD_THRESHOLD, value="5", actor=admin_user)

    refused = client_for(senior).post(reverse("adjudication:reapply"))
    assert refused.status_code == 403
    assert client_for(admin_user).get(reverse("adjudication:reapply")).status_code == 405
    assert not AuditEvent.objects.filter(action="aggregation.reapplied").exists()
    response = client_for(admin_user).post(reverse("adjudication:reapply"), follow=True)

    case.refresh_from_db()
    assert case.status == AdjudicationCase.Status.WITHDRAWN
    assert AuditEvent.objects.get(action="aggregation.reapplied").actor == admin_user
    assert "re-applied to 1 railcar(s) not yet final: 1 became final" in response.content.decode()
    assert b"Re-apply aggregation policies" in response.content
    assert (
        b"Re-apply aggregation policies"
        not in client_for(senior).get(reverse("adjudication:queue")).content
    )


def test_a_frame_image_is_served_only_for_a_frame_of_that_cases_railcar(senior, make_case):
    case, other = make_case(), make_case()
    frame = case.railcar.frames.order_by("index").first()
    client = client_for(senior)

    response = client.get(image_url(case, frame.uid))

    with default_storage.open(frame.file.name, "rb") as handle:
        assert response.content == handle.read()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == "inline; filename=frame"
    assert not response.has_header("ETag") and not response.has_header("Last-Modified")
    foreign = other.railcar.frames.first()
    assert client.get(image_url(case, foreign.uid)).status_code == 404
    assert client.get(image_url(case, uuid.uuid4())).status_code == 404
    assert client.get(image_url(AdjudicationCase(pk=10**9), frame.uid)).status_code == 404
    default_storage.delete(frame.file.name)
    assert client.get(image_url(case, frame.uid)).status_code == 404


# The queue


def test_the_queue_puts_the_most_disagreement_first_then_the_oldest(senior, make_case):
    mild_new = make_case(("10.0", "11.0", "12.0"), ("3A", "3A", "3A"))
    wide = make_case(("2.0", "12.0", "22.0"), ("3A", "3A", "3A"))
    mild_old = make_case(("10.0", "11.0", "12.0"), ("3A", "3A", "3A"))
    split = make_case(("10.0", "11.0", "12.0"), ("3A", "3A1", "3AH"))
    # Equal disagreement: the one opened first goes first, whatever its id.
    AdjudicationCase.objects.filter(pk=mild_old.pk).update(
        opened_at=mild_new.opened_at - timedelta(hours=3)
    )

    response = client_for(senior).get(reverse("adjudication:queue"))

    order = [row.case.pk for row in response.context["rows"]]
    assert order == [wide.pk, split.pk, mild_old.pk, mild_new.pk]
    body = response.content.decode()
    positions = [body.index(f'data-case="{pk}"') for pk in order]
    assert positions == sorted(positions)
    assert wide.disagreement > split.disagreement > mild_new.disagreement


def test_the_queue_shows_the_figures_and_the_recent_decisions(senior, admin_user, make_case):
    decided, waiting = make_case(), make_case(grades=("3A", "3A1", "3AH"))
    decisions.decide(
        case_id=decided.pk, actor=admin_user, contamination_pct=Decimal("12.0"), grade="3A",
        rationale_code="rater_outlier", note="<b>C</b> was off",
    )  # fmt: skip

    response = client_for(senior).get(reverse("adjudication:queue"), {"days": "x; DROP"})

    body = response.content.decode()
    row = re.search(rf'<tr data-case="{waiting.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "2.00" in row  # sample STD of 10, 12, 14
    assert "12.0 %" in row
    assert "3A × 1" in row and "3A1 × 1" in row and "3AH × 1" in row
    assert "contamination STD above the threshold, no grade majority" in row
    recent = re.search(rf'<tr data-case="{decided.pk}">(.*?)</tr>', body, re.S).group(1)
    assert "12.0 %, 3A" in recent and admin_user.username in recent
    assert "one rater is an outlier" in recent and "&lt;b&gt;C&lt;/b&gt; was off" in recent
    assert response.context["days"] == 7


# The case page


def test_the_case_page_shows_raters_by_letter_and_never_who_they_are(senior, case):
    ratings = list(case.railcar.ratings.order_by("id").select_related("annotator"))
    pseudonyms = Assignment.objects.filter(railcar=case.railcar).values_list("pseudonym", flat=True)

    response = client_for(senior).get(case_url(case))

    body = response.content.decode()
    for secret in [
        *(r.annotator.username for r in ratings), *pseudonyms, case.railcar.real_id,
        case.railcar.camera, case.railcar.fingerprint,
        *case.railcar.frames.values_list("source_name", flat=True),
    ]:  # fmt: skip
        assert secret not in body
    table = re.search(r'<table class="adj-raters".*?</table>', body, re.S).group(0)
    for letter, rating in zip("ABC", ratings, strict=True):
        row = re.search(rf'<tr data-rater="{letter}">(.*?)</tr>', table, re.S).group(1)
        assert f"Rater {letter}" in row
        assert f"{rating.contamination_pct} %" in row and f"{rating.seconds_spent} s" in row
    assert [r.excluded for r in response.context["raters"]] == [0, 0, 1]
    assert str(case.railcar.uid) in body


def test_the_case_page_embeds_every_raters_masks_and_exclusions_by_letter(senior, case):
    keyframe, second = case.railcar.frames.filter(layer__index=1).order_by("index")[:2]

    body = client_for(senior).get(case_url(case)).content.decode()

    script = re.search(r'<script id="adj-evidence" type="application/json">(.*?)</script>', body)
    evidence = json.loads(script.group(1))
    assert [r["letter"] for r in evidence["raters"]] == ["A", "B", "C"]
    assert len({r["colour"] for r in evidence["raters"]}) == 3
    for letter, (x0, y0, x1, y1) in zip("ABC", MASK_BOXES, strict=True):
        (mask,) = [m for m in evidence["masks"] if m["rater"] == letter]
        assert mask["frame"] == str(keyframe.uid)
        pixels = rle_codec.decode(mask["rle"])
        assert pixels[y0:y1, x0:x1].all() and pixels.sum() == (x1 - x0) * (y1 - y0)
        assert set(mask) == {"rater", "frame", "rle"}  # no mask, rating or assignment id
    assert evidence["exclusions"] == [
        {"rater": "C", "frame": str(second.uid), "code": "dust/smoke", "note": EXCLUSION_NOTE}
    ]
    layer_frames = [[f["id"] for f in layer["frames"]] for layer in evidence["layers"]]
    assert layer_frames[0] == [str(keyframe.uid), str(second.uid)]
    assert len(layer_frames) == 2


def test_a_hostile_exclusion_note_cannot_break_out_of_the_page(senior, make_case):
    case = make_case(exclusion_note="</script><script>alert(1)</script>")

    body = client_for(senior).get(case_url(case)).content.decode()

    assert "<script>alert(1)" not in body
    assert body.count("</script>") == body.count("<script")


def test_the_form_is_prefilled_with_the_consensus_mean_and_majority_grade(senior, make_case):
    majority = make_case(("10.0", "12.0", "14.1"), ("3A1", "3A", "3A1"))
    split = make_case(("10.0", "12.0", "14.0"), ("3A", "3A1", "3AH"))

    with_majority = client_for(senior).get(case_url(majority)).context["form"]
    without = client_for(senior).get(case_url(split)).context["form"]

    assert with_majority.initial == {"contamination_pct": Decimal("12.0"), "grade": "3A1"}
    assert without.initial == {"contamination_pct": Decimal("12.0")}
    body = client_for(senior).get(case_url(majority)).content.decode()
    assert 'value="12.0"' in body and re.search(r'value="3A1" required checked', body)


_estimates: dict[int, Estimate] = {}


def _test_estimates(railcar_id: int) -> Estimate | None:
    return _estimates.get(railcar_id)


@pytest.fixture
def estimates():
    register_provider(_test_estimates)  # once per process: register_provider keeps one of each
    yield _estimates
    _estimates.clear()


def test_the_model_estimate_shows_when_there_is_one(senior, make_case, estimates):
    scored, unscored = make_case(), make_case()
    estimates[scored.railcar_id] = Estimate(
        contamination_pct=13.24, grade="3AH", grade_probability=0.71, uncertainty=0.18,
        model_label="model v7",
    )  # fmt: skip

    shown = client_for(senior).get(case_url(scored)).content.decode()
    absent = client_for(senior).get(case_url(unscored)).content.decode()

    estimate = re.search(r'<dl class="adj-facts" id="adj-estimate">(.*?)</dl>', shown, re.S)
    assert "model v7" in estimate.group(1) and "13.2 %, 3AH" in estimate.group(1)
    assert "0.71" in estimate.group(1) and "0.18" in estimate.group(1)
    assert "No model estimate." in absent and "model v7" not in absent


def test_admins_get_the_railcar_timeline_link_and_seniors_do_not(senior, admin_user, case):
    timeline = reverse("operations:railcar-timeline", args=[case.railcar_id])

    assert timeline.encode() in client_for(admin_user).get(case_url(case)).content
    assert timeline.encode() not in client_for(senior).get(case_url(case)).content


# Decisions


def test_a_decision_sets_the_final_label_and_opens_the_next_case(senior, make_case):
    case, following = make_case(), make_case()
    client = client_for(senior)

    response = client.post(case_url(case), {**GOOD, "note": " read from layer 2 "})

    assert response.status_code == 302 and response["Location"] == case_url(following)
    label = FinalLabel.objects.get(railcar=case.railcar)
    assert (label.contamination_pct, label.grade) == (Decimal("11.5"), "3A1")
    assert (label.source, label.decided_by, label.case_id) == ("adjudication", senior, case.pk)
    case.refresh_from_db()
    case.railcar.refresh_from_db()
    assert case.status == AdjudicationCase.Status.DECIDED and case.decided_by == senior
    assert (case.rationale_code, case.note) == ("frame_evidence", "read from layer 2")
    assert case.railcar.status == Railcar.Status.LABELED
    event = AuditEvent.objects.get(action="adjudication.decided")
    assert event.actor == senior
    assert event.payload["final_label"] == label.pk and event.payload["grade"] == "3A1"
    page = client.get(response["Location"]).content.decode()
    assert f"Case {case.pk} decided: 11.5 %, 3A1" in page


def test_the_last_decision_goes_back_to_the_queue(senior, case):
    response = client_for(senior).post(case_url(case), GOOD)

    assert response.status_code == 302 and response["Location"] == reverse("adjudication:queue")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"contamination_pct": "abc"}, "Enter a number."),
        ({"contamination_pct": "NaN"}, "Enter a number."),
        ({"contamination_pct": "Infinity"}, "Enter a number."),
        ({"contamination_pct": "1e400"}, "Ensure that there are no more than 4 digits"),
        ({"contamination_pct": "-0.1"}, "greater than or equal to 0"),
        ({"contamination_pct": "100.1"}, "less than or equal to 100"),
        ({"contamination_pct": "12.34"}, "no more than 1 decimal place"),
        ({"contamination_pct": ""}, "This field is required."),
        ({"grade": "4B"}, "Select a valid choice. 4B is not one of the available choices."),
        ({"grade": "3A'; DROP TABLE"}, "Select a valid choice."),
        ({"rationale_code": "coin_toss"}, "Select a valid choice. coin_toss is not one"),
        ({"rationale_code": "other"}, "The rationale &#x27;other&#x27; needs a note"),
        ({"rationale_code": "other", "note": "   \n "}, "needs a note"),
        ({"note": "n" * 1001}, "at most 1000 characters (it has 1001)"),
        ({"note": "nul \x00 byte"}, "Null characters are not allowed."),
    ],
)
def test_bad_input_re_renders_the_form_with_a_message_and_records_nothing(
    senior, case, data, message
):
    response = client_for(senior).post(case_url(case), {**GOOD, **data})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Not recorded:" in response.content.decode()
    assert response.context["form"].data["grade"] == data.get("grade", GOOD["grade"])
    case.refresh_from_db()
    assert case.status == AdjudicationCase.Status.OPEN
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    assert decided_events() == 0


@pytest.mark.parametrize("missing", ["contamination_pct", "grade", "rationale_code"])
def test_a_decision_missing_a_field_is_refused(senior, case, missing):
    data = {k: v for k, v in GOOD.items() if k != missing}

    response = client_for(senior).post(case_url(case), data)

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_an_oversized_post_is_refused_and_records_nothing(senior, case, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

    response = client_for(senior).post(case_url(case), {**GOOD, "note": "x" * 100_000})

    assert response.status_code == 400
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_a_decision_needs_the_csrf_token(senior, case):
    client = client_for(senior, enforce_csrf_checks=True)

    response = client.post(case_url(case), GOOD)

    assert response.status_code == 403
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    page = client.get(case_url(case))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    ok = client.post(case_url(case), {**GOOD, "csrfmiddlewaretoken": token.group(1)})
    assert ok.status_code == 302 and FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_a_decided_case_is_read_only_and_a_late_decision_says_who_decided(senior, make_case):
    case = make_case()
    other = senior_named("senior-two")
    decisions.decide(
        case_id=case.pk, actor=other, contamination_pct=Decimal("13.0"), grade="3A",
        rationale_code="agrees_with_majority",
    )  # fmt: skip
    client = client_for(senior)

    page = client.get(case_url(case))
    late = client.post(case_url(case), GOOD, follow=True)

    assert page.context["form"] is None
    body = page.content.decode()
    assert 'id="adj-decision"' not in body
    assert "Final label: <strong>13.0 %, 3A</strong>" in body and "senior-two" in body
    assert late.redirect_chain == [(case_url(case), 302)]
    assert (
        f"Case {case.pk} was already decided by senior-two. Your decision (11.5 %, 3A1, "
        "re-read from the frames) was not recorded." in late.content.decode()
    )
    assert FinalLabel.objects.get(railcar=case.railcar).decided_by == other
    assert decided_events() == 1


def test_a_withdrawn_case_says_so_to_a_late_decision(senior, admin_user, case):
    set_policy(key=STD_THRESHOLD, value="5", actor=admin_user)
    client_for(admin_user).post(reverse("adjudication:reapply"))

    late = client_for(senior).post(case_url(case), GOOD, follow=True)

    body = late.content.decode()
    assert "was withdrawn: under the current policies its consensus became final" in body
    assert "Withdrawn" in body
    assert FinalLabel.objects.get(railcar=case.railcar).source == "consensus"


def test_a_senior_who_rated_the_railcar_sees_nothing_of_it_and_cannot_decide(make_case):
    dual = senior_named("dual", Role.ANNOTATOR)
    others = annotators(2, prefix="other")
    case = make_case(raters=[others[0], dual, others[1]])
    client = client_for(dual)

    page = client.get(case_url(case))
    post = client.post(case_url(case), GOOD)
    listing = client.get(reverse("adjudication:queue")).content.decode()

    for response in (page, post):
        assert response.status_code == 403
        body = response.content.decode()
        assert "You rated this railcar yourself" in body
        assert "adj-evidence" not in body and "14.0 %" not in body and "Rater A" not in body
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    row = re.search(rf'<tr data-case="{case.pk}">(.*?)</tr>', listing, re.S).group(1)
    assert "You rated this railcar" in row and "2.00" not in row and "12.0 %" not in row
    assert f'href="{case_url(case)}"' not in listing
    with pytest.raises(decisions.OwnRating):
        decisions.decide(case_id=case.pk, actor=dual, **{**GOOD, "contamination_pct": Decimal(1)})


def test_the_next_case_skips_railcars_the_senior_rated(make_case):
    dual = senior_named("dual", Role.ANNOTATOR)
    others = annotators(2, prefix="other")
    own = make_case(("0.0", "20.0", "40.0"), raters=[others[0], dual, others[1]])
    first, second = make_case(), make_case()

    response = client_for(dual).post(case_url(first), GOOD)

    assert own.disagreement > second.disagreement  # own is the top of the queue ...
    assert response["Location"] == case_url(second)  # ... but not for the one who rated it


def test_a_missing_case_is_404(senior):
    assert client_for(senior).get(reverse("adjudication:case", args=[10**9])).status_code == 404
    assert (
        client_for(senior).post(reverse("adjudication:case", args=[10**9]), GOOD).status_code == 404
    )


@pytest.mark.django_db(transaction=True)
def test_two_seniors_deciding_at_once_give_one_final_label(on_postgresql):
    case = open_case_of(disputed_railcar())
    seniors = [senior_named("first"), senior_named("second")]
    clients: queue.Queue[tuple[User, Client]] = queue.Queue()
    for user in seniors:
        clients.put((user, client_for(user)))
    grades = {"first": "3A", "second": "3AH"}

    def decide() -> tuple[User, Client, object]:
        user, client = clients.get()
        data = {**GOOD, "grade": grades[user.username]}
        return user, client, client.post(case_url(case), data)

    results = run_at_once(decide, threads=2)

    assert sorted(r.status_code for _, _, r in results) == [302, 302]
    label = FinalLabel.objects.get(railcar=case.railcar)
    winner = label.decided_by
    assert label.grade == grades[winner.username]
    assert decided_events() == 1
    (loser_client,) = [c for user, c, _ in results if user != winner]
    (loser_response,) = [r for user, _, r in results if user != winner]
    assert loser_response["Location"] == case_url(case)
    message = loser_client.get(case_url(case)).content.decode()
    assert f"was already decided by {winner.username}" in message
    assert "was not recorded" in message


@pytest.mark.django_db(transaction=True)
def test_reopening_from_the_pages_needs_a_reviewer_a_reason_and_a_final_label(
    client, senior, admin_user, annotator
):
    from tests.adjudication.factories import rated_railcar

    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"], prefix="ro")
    url = reverse("adjudication:reopen", args=[railcar.pk])

    client.force_login(annotator)
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.force_login(senior)
    assert client.get(url).status_code == 405
    response = client.post(url, {"reason": ""}, follow=True)
    assert "say why" in response.content.decode()
    assert not AdjudicationCase.objects.filter(railcar=railcar).exists()

    response = client.post(url, {"reason": "<script>alert(1)</script>"})
    case = AdjudicationCase.objects.get(railcar=railcar)
    assert response.status_code == 302
    assert response["Location"] == reverse("adjudication:case", args=[case.pk])
    page = client.get(response["Location"]).content.decode()
    assert "reopened after a final label" in page
    assert "<script>alert(1)</script>" not in page

    client.force_login(admin_user)
    timeline = reverse("operations:railcar-timeline", args=[railcar.pk])
    page = client.get(timeline).content.decode()
    assert "Reopened for adjudication: &lt;script&gt;" in page
    assert (
        client.post(reverse("adjudication:reopen", args=[10**9]), {"reason": "x"}).status_code
        == 404
    )
