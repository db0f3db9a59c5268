"""The timeline page's cost and races: a fixed number of queries whatever the events, and no
good event shown broken while others are appended."""

import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from labeling import annotation, pool
from operations import timeline
from scrapannot import audit
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once
from tests.conftest import client_for
from tests.labeling.factories import annotators, pool_railcar
from tests.operations.timeline_factories import busy_railcar

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


# Session, user, roles (3); railcar with consensus, current label (2); frames, assignments, five
# object kinds, the label's time (8); the operator decisions and escalations (2); the learning
# loop's dataset and model versions, the railcar's scores (2); events, deleted masks' saves,
# predecessors (3); the last nightly verdict and the chain walked since (2).
MAX_QUERIES = 22


def test_the_page_takes_a_fixed_number_of_queries_whatever_the_events(
    admin_user, django_assert_max_num_queries
):
    client = client_for(admin_user)
    counts = []
    for events in (2, 60):
        railcar = busy_railcar(events)
        url = reverse("operations:railcar-timeline", args=[railcar.pk])
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        assert len(timeline.railcar_events(railcar)) >= events
        counts.append(len(queries))
        with django_assert_max_num_queries(MAX_QUERIES):
            client.get(url)

    assert counts[0] == counts[1]


@pytest.mark.django_db(transaction=True)
def test_the_timeline_stays_verified_while_events_are_appended(admin_user):
    """Reads racing writes: the events and their predecessors come from separate queries, so a
    concurrent append must never make a good event look broken."""
    railcar = pool_railcar(raters=1)
    (rater,) = annotators(1, prefix="c")
    assignment = pool.next_assignment(annotator=rater)
    frame = railcar.frames.order_by("index").first()
    url = reverse("operations:railcar-timeline", args=[railcar.pk])
    turn = iter(range(1000))

    def work() -> list[str]:
        n = next(turn)
        if n == 4:  # the sequencer, sealing while the others write and read
            for _ in range(20):
                audit.seal_pending()
                time.sleep(0.02)
            return []
        if n % 2 == 0:
            for _ in range(10):
                annotation.exclude_frame(
                    uid=assignment.uid, annotator=rater, frame_uid=frame.uid, code="blur"
                )
                annotation.include_frame(uid=assignment.uid, annotator=rater, frame_uid=frame.uid)
            return []
        client = client_for(admin_user)
        return [client.get(url).content.decode() for _ in range(5)]

    pages = [page for result in run_at_once(work, threads=5) for page in result]

    assert len(pages) == 10
    for html in pages:
        assert 'data-chain="ok"' in html and 'data-state="broken"' not in html
    # Every event of this (flushed) database is the railcar's: a lease and the toggles.
    assert len(timeline.railcar_events(railcar)) == AuditEvent.objects.count() > 20
    audit.seal_pending()
    assert audit.verify_chain().ok and all(e.verified for e in timeline.railcar_events(railcar))
