"""The railcar timeline: every event of one railcar, in order, each checked against the chain."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from adjudication import decisions, timeline
from adjudication.models import AdjudicationCase, FinalLabel
from labeling import annotation, pipeline, pool
from labeling.models import Assignment, Railcar
from labeling.synth import write_unloadings
from scrapannot import audit, policy
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rate_railcar, rated_railcar
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db

PROMPTS = {"points": [[10, 10]], "labels": [1]}


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    # These tests make a dozen users each; the real hasher's 0.4 s apiece is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _rle(railcar: Railcar) -> dict:
    """A small square mask in COCO RLE for a frame of `railcar`."""
    import numpy as np

    from labeling import rle

    frame = railcar.frames.order_by("index").first()
    pixels = np.zeros((frame.height, frame.width), dtype=bool)
    pixels[5:20, 5:20] = True
    return rle.encode(pixels)


def _tamper(sql: str, params: list) -> None:
    """What an attacker with the table owner's rights does: drop the guard, then edit."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE scrapannot_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE scrapannot_auditevent ENABLE TRIGGER USER")


def _client(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def _seqs_on(object_type: str, ids) -> set[int]:
    return set(
        AuditEvent.objects.filter(
            object_type=object_type, object_id__in=[str(i) for i in ids]
        ).values_list("seq", flat=True)
    )


def _ingested(tmp_path) -> Railcar:
    """A small synthetic unloading through the real ingest command and quality checks."""
    (truth,) = write_unloadings(
        out_dir=tmp_path, railcars=1, seed=7, width=320, height=180, layers=(3, 3),
        frames_per_layer=2, defect_share=0.0,
    )  # fmt: skip
    call_command("ingest", str(tmp_path / truth.folder), stdout=None)
    railcar = Railcar.objects.get(real_id=truth.railcar)
    return pipeline.check_railcar(railcar_id=railcar.pk)


@pytest.fixture
def history(tmp_path, senior, django_capture_on_commit_callbacks):
    """Railcar A from ingest to an adjudicated label, with a release, an expired lease, masks
    (one deleted) and exclusions; railcar B rated meanwhile by other raters, interleaved."""
    a = _ingested(tmp_path)
    assert a.status == Railcar.Status.IN_POOL and a.raters_needed == 3, a.attention_reason
    b = pool_railcar(raters=3, priority=-1.0)  # handed out once A has no open slot
    r0, r1, r2, quitter, sleeper = annotators(5, prefix="a")
    b_raters = annotators(3, prefix="b")

    first = pool.next_assignment(annotator=r0)
    pool.release_assignment(
        uid=pool.next_assignment(annotator=quitter).uid, annotator=quitter, reason="lunch"
    )
    asleep = pool.next_assignment(annotator=sleeper)
    Assignment.objects.filter(pk=asleep.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert pool.expire_leases() == 1
    frame = a.frames.filter(quality="eligible").order_by("index").first()
    gone = annotation.save_mask(
        uid=first.uid, annotator=r0, frame_uid=frame.uid, rle=_rle(a), prompts=PROMPTS,
        engine="test",
    )  # fmt: skip
    annotation.delete_mask(uid=first.uid, annotator=r0, mask_uid=gone.uid)
    annotation.save_mask(
        uid=first.uid, annotator=r0, frame_uid=frame.uid, rle=_rle(a), prompts=PROMPTS,
        engine="test",
    )  # fmt: skip
    annotation.exclude_frame(uid=first.uid, annotator=r0, frame_uid=frame.uid, code="blur")
    annotation.include_frame(uid=first.uid, annotator=r0, frame_uid=frame.uid)
    annotation.exclude_frame(uid=first.uid, annotator=r0, frame_uid=frame.uid, code="dust_smoke")
    second, third = (pool.next_assignment(annotator=r) for r in (r1, r2))
    assert {first.railcar_id, second.railcar_id, third.railcar_id} == {a.pk}

    with django_capture_on_commit_callbacks(execute=True):
        # B's raters lease and rate while A's ratings come in: their events interleave.
        b_first = pool.next_assignment(annotator=b_raters[0])
        assert b_first.railcar_id == b.pk
        b_frame = b.frames.order_by("index").first()
        annotation.exclude_frame(
            uid=b_first.uid, annotator=b_raters[0], frame_uid=b_frame.uid, code="blur"
        )
        for assignment, rater, value in ((first, r0, "10"), (second, r1, "20")):
            annotation.submit_rating(
                uid=assignment.uid, annotator=rater, contamination_pct=Decimal(value),
                grade="3A", seconds_spent=90,
            )  # fmt: skip
        policy.set_policy(key="aggregation.std_threshold", value=0.5, actor=senior)
        annotation.submit_rating(
            uid=b_first.uid, annotator=b_raters[0], contamination_pct=Decimal("5"),
            grade="3A1", seconds_spent=30,
        )  # fmt: skip
        annotation.submit_rating(
            uid=third.uid, annotator=r2, contamination_pct=Decimal("30"), grade="3AH",
            seconds_spent=45,
        )  # fmt: skip
        rate_railcar(b, b_raters[1:], ["5", "5"], ["3A1", "3A1"])
    case = AdjudicationCase.objects.get(railcar=a)
    decisions.decide(
        case_id=case.pk, actor=senior, contamination_pct=Decimal("21"), grade="3A",
        rationale_code="frame_evidence",
    )  # fmt: skip
    late = policy.set_policy(key="pool.lease_minutes", value=45, actor=senior)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == b.status == Railcar.Status.LABELED
    return {"a": a, "b": b, "late_policy": late}


def test_a_railcar_shows_every_phase_in_order_and_nothing_of_another(history):
    a, b = history["a"], history["b"]

    entries = timeline.railcar_events(a)

    seqs = [e.seq for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    actions = [e.action for e in entries]
    assert actions[:2] == ["unloading.ingested", "quality.checked"]
    assert actions[-4:] == [
        "rating.submitted", "railcar.rated", "aggregation.computed", "adjudication.decided",
    ]  # fmt: skip
    assert actions.count("assignment.leased") == 5
    assert actions.count("rating.submitted") == 3
    for action in (
        "assignment.released", "assignment.expired", "mask.deleted", "frame.included",
        "policy.changed",
    ):  # fmt: skip
        assert actions.count(action) == 1, action
    # Both saves, even of the mask whose row was deleted.
    assert actions.count("mask.saved") == 2
    assert actions.count("frame.excluded") == 2
    grouped = dict(timeline.by_phase(entries))
    assert [e.action for e in grouped[timeline.INGEST]] == ["unloading.ingested", "quality.checked"]
    assert {e.action for e in grouped[timeline.AGGREGATION]} == {
        "policy.changed", "aggregation.computed", "adjudication.decided",
    }  # fmt: skip
    assert grouped[timeline.LEARNING] == []
    assert all(e.verified for e in entries)
    (context,) = [e for e in entries if e.context]
    assert context.payload["key"] == "aggregation.std_threshold"
    assert "aggregation.std_threshold: 0.4 → 0.5" in context.summary

    # Nothing recorded on B's objects, and not the policy changed after A's label.
    b_seqs = (
        _seqs_on("labeling.railcar", [b.pk])
        | _seqs_on("labeling.assignment", b.assignments.values_list("pk", flat=True))
        | _seqs_on("labeling.rating", b.ratings.values_list("pk", flat=True))
        | _seqs_on("adjudication.finallabel", b.final_labels.values_list("pk", flat=True))
    )
    assert len(b_seqs) >= 9 and not b_seqs & set(seqs)
    late = AuditEvent.objects.get(action="policy.changed", object_id=str(history["late_policy"].pk))
    assert late.seq not in seqs
    # Every event in the trail is A's, B's, or global.
    b_entries = {e.seq for e in timeline.railcar_events(b)}
    everything = set(AuditEvent.objects.values_list("seq", flat=True))
    assert everything - set(seqs) - b_entries == {late.seq}


def test_summaries_name_what_happened(history):
    entries = {}
    for entry in timeline.railcar_events(history["a"]):
        entries.setdefault(entry.action, entry)  # the first of each

    assert entries["rating.submitted"].summary == (
        "Rated 10 %, grade 3A in 90 s (excluded frames: 1, masks: 1)"
    )
    assert entries["assignment.released"].summary == "Released the lease: lunch"
    assert entries["adjudication.decided"].summary == "Decided 21.0 % 3A: frame_evidence"
    assert entries["frame.included"].summary.startswith("Put frame ")
    assert "rejected" in entries["unloading.ingested"].summary


def test_the_page_shows_the_header_phases_and_a_verified_chain(history, admin_user):
    a = history["a"]

    response = _client(admin_user).get(reverse("adjudication:railcar-timeline", args=[a.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert a.real_id in html and a.line in html and a.camera in html
    label = FinalLabel.objects.get(railcar=a)
    assert f"{label.contamination_pct} % {label.grade}" in html
    for phase in timeline.PHASES:
        assert f"<h2>{phase}</h2>" in html.replace("&amp;", "&")
    assert 'data-chain="ok"' in html and 'data-state="broken"' not in html
    assert html.count('data-state="verified"') == len(timeline.railcar_events(a))
    # Annotator names are for admins, and they are here.
    assert "a0" in html


def test_an_edited_event_is_shown_broken_and_the_banner_says_so(history, admin_user):
    a = history["a"]
    rating = a.ratings.order_by("id").first()
    event = AuditEvent.objects.get(object_type="labeling.rating", object_id=str(rating.pk))
    _tamper(
        "UPDATE scrapannot_auditevent SET payload = jsonb_set(payload, '{grade}', '\"3AH\"') "
        "WHERE seq = %s",
        [event.seq],
    )

    entries = timeline.railcar_events(a)
    response = _client(admin_user).get(reverse("adjudication:railcar-timeline", args=[a.pk]))

    broken = [e for e in entries if not e.verified]
    assert [(e.seq, e.problem) for e in broken] == [
        (event.seq, "content does not match its hash (edited)")
    ]
    html = response.content.decode()
    assert 'data-chain="broken"' in html and f"at event #{event.seq}" in html
    assert html.count('data-state="broken"') == 1
    assert f'data-seq="{event.seq}" data-action="rating.submitted" data-state="broken"' in html


def test_an_edit_that_rehashes_the_event_breaks_the_link_of_the_next(history):
    a = history["a"]
    leases = AuditEvent.objects.filter(
        action="assignment.leased",
        object_id__in=[str(pk) for pk in a.assignments.values_list("pk", flat=True)],
    ).order_by("seq")
    edited = leases.first()
    following = AuditEvent.objects.get(seq=edited.seq + 1)
    assert following.seq in {e.seq for e in timeline.railcar_events(a)}
    payload = {**edited.payload, "slot": 3}
    forged = audit.event_digest(
        prev_hash=edited.prev_hash, seq=edited.seq, created_at=edited.created_at,
        actor_id=edited.actor_id, actor_label=edited.actor_label, action=edited.action,
        object_type=edited.object_type, object_id=edited.object_id, payload=payload,
    )  # fmt: skip
    _tamper(
        "UPDATE scrapannot_auditevent SET payload = %s::jsonb, hash = %s WHERE seq = %s",
        [audit.canonical_json(payload), forged, edited.seq],
    )

    states = {e.seq: (e.verified, e.problem) for e in timeline.railcar_events(a)}

    assert states[edited.seq] == (True, "")
    assert states[following.seq] == (False, f"not linked to event #{edited.seq} (its hash differs)")


def test_a_deleted_event_of_another_railcar_breaks_the_banner_and_the_next_link(
    history, admin_user
):
    a = history["a"]
    aggregated = AuditEvent.objects.get(
        object_type="labeling.railcar", object_id=str(a.pk), action="aggregation.computed"
    )
    victim = AuditEvent.objects.get(seq=aggregated.seq - 1)
    assert victim.seq not in {e.seq for e in timeline.railcar_events(a)}
    _tamper("DELETE FROM scrapannot_auditevent WHERE seq = %s", [victim.seq])

    response = _client(admin_user).get(reverse("adjudication:railcar-timeline", args=[a.pk]))

    html = response.content.decode()
    assert 'data-chain="broken"' in html and "sequence gap" in html
    broken = [(e.seq, e.problem) for e in timeline.railcar_events(a) if not e.verified]
    assert broken == [(aggregated.seq, f"the event before it (#{victim.seq}) is missing")]
    assert html.count('data-state="broken"') == 1


def _busy_railcar(events: int) -> Railcar:
    """A rated railcar whose first rater toggled a frame `events` times before rating."""
    railcar = pool_railcar(raters=2)
    raters = annotators(2, prefix=f"q{events}-")
    assignment = pool.next_assignment(annotator=raters[0])
    frame = railcar.frames.order_by("index").first()
    for _ in range(events // 2):
        annotation.exclude_frame(
            uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid, code="blur"
        )
        annotation.include_frame(uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid)
    mask = annotation.save_mask(
        uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid, rle=_rle(railcar),
        prompts=PROMPTS, engine="test",
    )  # fmt: skip
    annotation.delete_mask(uid=assignment.uid, annotator=raters[0], mask_uid=mask.uid)
    annotation.submit_rating(
        uid=assignment.uid, annotator=raters[0], contamination_pct=Decimal("3"), grade="3A",
        seconds_spent=5,
    )  # fmt: skip
    rate_railcar(railcar, raters[1:], ["3"], ["3A"])
    return railcar


# Session, user, roles (3); railcar with consensus, current label (2); frames, assignments, five
# object kinds, the label's time (8); events, deleted masks' saves, predecessors (3); the last
# nightly verdict and the chain walked since (2).
MAX_QUERIES = 18


def test_the_page_takes_a_fixed_number_of_queries_whatever_the_events(
    admin_user, django_assert_max_num_queries
):
    client = _client(admin_user)
    counts = []
    for events in (2, 60):
        railcar = _busy_railcar(events)
        url = reverse("adjudication:railcar-timeline", args=[railcar.pk])
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        assert len(timeline.railcar_events(railcar)) >= events
        counts.append(len(queries))
        with django_assert_max_num_queries(MAX_QUERIES):
            client.get(url)

    assert counts[0] == counts[1]


@pytest.mark.parametrize("who", ["anonymous", "annotator", "senior", "plant", "outsider"])
def test_nobody_but_admins_reaches_the_railcar_pages(who, request):
    railcar, _ = rated_railcar(["4", "4", "4"], ["3A", "3A", "3A"])
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = _client(user)

    for url in (
        reverse("adjudication:railcars"),
        reverse("adjudication:railcars") + f"?q={railcar.real_id}",
        reverse("adjudication:railcar-timeline", args=[railcar.pk]),
        reverse("adjudication:railcar-timeline", args=[railcar.pk + 1000]),
    ):
        response = client.get(url)
        if user is None:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403, url
        assert railcar.real_id.encode() not in response.content


def test_a_plant_token_does_not_open_the_pages(plant_client):
    railcar = pool_railcar()
    response = plant_client.get(reverse("adjudication:railcar-timeline", args=[railcar.pk]))
    assert response.status_code == 302


def test_the_pages_answer_get_only(admin_user):
    railcar = pool_railcar()
    client = _client(admin_user)
    assert client.post(reverse("adjudication:railcars")).status_code == 405
    url = reverse("adjudication:railcar-timeline", args=[railcar.pk])
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("railcar_id", [999999, 2**31, 2**63, 10**30])
def test_an_unknown_railcar_is_404(admin_user, railcar_id):
    url = reverse("adjudication:railcar-timeline", args=[railcar_id])
    assert _client(admin_user).get(url).status_code == 404


def test_the_list_finds_railcars_by_real_id_uid_status_and_line(admin_user):
    rated, _ = rated_railcar(["4", "4", "4"], ["3A", "3A", "3A"])
    waiting = pool_railcar(with_files=False)
    Railcar.objects.filter(pk=waiting.pk).update(line="L9")
    client = _client(admin_user)
    url = reverse("adjudication:railcars")

    def found(**params) -> list[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return [r.real_id for r in response.context["page"]]

    assert found(q=rated.real_id[-4:]) == [rated.real_id]
    assert found(q=str(waiting.uid)) == [waiting.real_id]
    assert found(q=str(waiting.uid).upper()) == [waiting.real_id]
    assert found(status="rated") == [rated.real_id]
    assert found(line="L9") == [waiting.real_id]
    assert sorted(found()) == sorted([rated.real_id, waiting.real_id])
    html = client.get(url, {"q": rated.real_id}).content.decode()
    assert reverse("adjudication:railcar-timeline", args=[rated.pk]) in html


def test_the_list_pages_by_fifty(admin_user):
    for _ in range(51):
        pool_railcar(with_files=False, layers=1, frames_per_layer=1)
    client = _client(admin_user)
    url = reverse("adjudication:railcars")

    first = client.get(url, {"line": "L2"})
    second = client.get(url, {"line": "L2", "page": 2})

    assert len(first.context["page"]) == 50 and len(second.context["page"]) == 1
    assert "line=L2&amp;page=2" in first.content.decode()
    for page in ("abc", "-1", "0", "99999999999999999999", "1e3"):
        assert client.get(url, {"page": page}).status_code == 200


@pytest.mark.parametrize(
    "q",
    [
        "' OR 1=1 --",
        "RC-%",
        "_",
        "%",
        "\\",
        "'); DROP TABLE labeling_railcar; --",
        "Ж🚂 ​‮",
        "<script>alert(1)</script>",
        "00000000-0000-0000-0000-000000000000",
    ],
)
def test_malicious_search_text_matches_nothing_and_breaks_nothing(admin_user, q):
    railcar = pool_railcar(with_files=False)

    response = _client(admin_user).get(reverse("adjudication:railcars"), {"q": q})

    assert response.status_code == 200
    assert list(response.context["page"]) == []
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert Railcar.objects.filter(pk=railcar.pk).exists()


@pytest.mark.parametrize(
    "params, field",
    [
        ({"q": "x" * 100_000}, "q"),
        ({"q": "RC\x00-1"}, "q"),
        ({"status": "labeled' OR '1'='1"}, "status"),
        ({"line": "L" * 33}, "line"),
        ({"line": "L2\x00"}, "line"),
    ],
)
def test_bad_search_input_gets_a_clear_error(admin_user, params, field):
    pool_railcar(with_files=False)

    response = _client(admin_user).get(reverse("adjudication:railcars"), params)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert 'id="search-errors"' in response.content.decode()
    assert response.context["page"] is None


@pytest.mark.django_db(transaction=True)
def test_the_timeline_stays_verified_while_events_are_appended(admin_user):
    """Reads racing writes: the events and their predecessors come from separate queries, so a
    concurrent append must never make a good event look broken."""
    railcar = pool_railcar(raters=1)
    (rater,) = annotators(1, prefix="c")
    assignment = pool.next_assignment(annotator=rater)
    frame = railcar.frames.order_by("index").first()
    url = reverse("adjudication:railcar-timeline", args=[railcar.pk])
    turn = iter(range(1000))

    def work() -> list[str]:
        if next(turn) % 2 == 0:
            for _ in range(10):
                annotation.exclude_frame(
                    uid=assignment.uid, annotator=rater, frame_uid=frame.uid, code="blur"
                )
                annotation.include_frame(uid=assignment.uid, annotator=rater, frame_uid=frame.uid)
            return []
        client = _client(admin_user)
        return [client.get(url).content.decode() for _ in range(5)]

    pages = [page for result in run_at_once(work, threads=4) for page in result]

    assert len(pages) == 10
    for html in pages:
        assert 'data-chain="ok"' in html and 'data-state="broken"' not in html
    # Every event of this (flushed) database is the railcar's: a lease and the toggles.
    assert len(timeline.railcar_events(railcar)) == AuditEvent.objects.count() > 20


@pytest.fixture
def staff_admin(db) -> User:
    return User.objects.create_superuser("root", password="root-pass-1")


def test_the_django_admin_lists_adjudication_read_only_with_timeline_links(history, staff_admin):
    a = history["a"]
    client = _client(staff_admin)
    timeline_url = reverse("adjudication:railcar-timeline", args=[a.pk])

    for model in ("consensus", "adjudicationcase", "finallabel"):
        response = client.get(reverse(f"admin:adjudication_{model}_changelist"))
        assert response.status_code == 200, model
        assert timeline_url in response.content.decode(), model
        assert client.get(reverse(f"admin:adjudication_{model}_add")).status_code == 403
    assert client.get(reverse("admin:adjudication_ratercalibration_changelist")).status_code == 200
    label = FinalLabel.objects.get(railcar=a)
    change = reverse("admin:adjudication_finallabel_change", args=[label.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"contamination_pct": "99.0", "grade": "3AH"}).status_code == 403
    delete = reverse("admin:adjudication_finallabel_delete", args=[label.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    label.refresh_from_db()
    assert label.contamination_pct == Decimal("21.0") and label.grade == "3A"
