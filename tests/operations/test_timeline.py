"""The railcar timeline: every event of one railcar, in order, each checked against the chain."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from adjudication import decisions
from adjudication.models import AdjudicationCase, FinalLabel
from labeling import annotation, pool
from labeling.models import Assignment, Railcar
from operations import timeline
from scrapannot import audit, policy
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rate_railcar
from tests.conftest import client_for
from tests.labeling.factories import annotators, pool_railcar
from tests.operations.timeline_factories import (
    PROMPTS,
    ingested_railcar,
    seqs_on,
    square_rle,
    tamper,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def history(tmp_path, senior, django_capture_on_commit_callbacks):
    """Railcar A from ingest to an adjudicated label, with a release, an expired lease, masks
    (one deleted) and exclusions; railcar B rated meanwhile by other raters, interleaved."""
    a = ingested_railcar(tmp_path)
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
        uid=first.uid, annotator=r0, frame_uid=frame.uid, rle=square_rle(a), prompts=PROMPTS,
        engine="test",
    )  # fmt: skip
    annotation.delete_mask(uid=first.uid, annotator=r0, mask_uid=gone.uid)
    kept = annotation.save_mask(
        uid=first.uid, annotator=r0, frame_uid=frame.uid, rle=square_rle(a), prompts=PROMPTS,
        engine="test",
    )  # fmt: skip
    annotation.change_mask(uid=first.uid, annotator=r0, mask_uid=kept.uid, kind="wood")
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
    audit.seal_pending()  # what the sequencer does within seconds
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
        "policy.changed", "mask.changed",
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
        seqs_on("labeling.railcar", [b.pk])
        | seqs_on("labeling.assignment", b.assignments.values_list("pk", flat=True))
        | seqs_on("labeling.rating", b.ratings.values_list("pk", flat=True))
        | seqs_on("adjudication.finallabel", b.final_labels.values_list("pk", flat=True))
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
    assert re.fullmatch(
        r"Corrected a mask on .+: (\d+) px other → \1 px wood", entries["mask.changed"].summary
    ), entries["mask.changed"].summary
    assert entries["adjudication.decided"].summary == "Decided 21.0 % 3A: frame_evidence"
    assert entries["frame.included"].summary.startswith("Put frame ")
    assert "rejected" in entries["unloading.ingested"].summary


def test_the_page_shows_the_header_phases_and_a_verified_chain(history, admin_user):
    a = history["a"]

    response = client_for(admin_user).get(reverse("operations:railcar-timeline", args=[a.pk]))

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
    tamper(
        "UPDATE scrapannot_auditevent SET payload = jsonb_set(payload, '{grade}', '\"3AH\"') "
        "WHERE seq = %s",
        [event.seq],
    )

    entries = timeline.railcar_events(a)
    response = client_for(admin_user).get(reverse("operations:railcar-timeline", args=[a.pk]))

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
    tamper(
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
    tamper("DELETE FROM scrapannot_auditevent WHERE seq = %s", [victim.seq])

    response = client_for(admin_user).get(reverse("operations:railcar-timeline", args=[a.pk]))

    html = response.content.decode()
    assert 'data-chain="broken"' in html and "sequence gap" in html
    broken = [(e.seq, e.problem) for e in timeline.railcar_events(a) if not e.verified]
    assert broken == [(aggregated.seq, f"the event before it (#{victim.seq}) is missing")]
    assert html.count('data-state="broken"') == 1


@pytest.fixture
def staff_admin(db) -> User:
    return User.objects.create_superuser("root", password="root-pass-1")


def test_the_django_admin_lists_adjudication_read_only_with_timeline_links(history, staff_admin):
    a = history["a"]
    client = client_for(staff_admin)
    timeline_url = reverse("operations:railcar-timeline", args=[a.pk])

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
