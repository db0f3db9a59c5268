"""Operators' amendments as a label source: included in a dataset version only when the admin
asks, only for railcars without a final label, with source and provenance recorded per item."""

from decimal import Decimal

import pytest
from django.urls import reverse

from mlloop import datasets
from mlloop.models import DatasetItem
from operations import review
from operations.amendment_labels import OPERATOR
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.mlloop.dataset_factories import label
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytestmark = pytest.mark.django_db


@pytest.fixture
def amended():
    """Three railcars: one with a final label, one amended by an operator, one accepted."""
    labeled, amended, accepted = railcar_on("L1"), railcar_on("L1"), railcar_on("L1")
    label(labeled, "1.5")
    operator = operator_of("L1", username="op-anna")
    e = estimate(amended, contamination_pct=2.0, grade="3A")
    review.decide(
        operator=operator, railcar=amended, estimate=e, action="amend",
        contamination_pct=3.25, rationale_code="sample_analysis", note="lab says so",
    )  # fmt: skip
    review.decide(operator=operator, railcar=accepted, estimate=estimate(accepted), action="accept")
    return {"labeled": labeled, "amended": amended, "accepted": accepted, "estimate": e}


def test_a_freeze_takes_final_labels_only_unless_the_admin_includes_amendments(amended):
    version = datasets.freeze_version(actor=None)

    assert list(version.items.values_list("railcar_id", "source")) == [
        (amended["labeled"].pk, "consensus")
    ]


def test_an_included_amendment_records_its_source_and_provenance(amended):
    version = datasets.freeze_version(actor=None, include_sources=[OPERATOR])

    items = {i.railcar_id: i for i in version.items.all()}
    assert set(items) == {amended["labeled"].pk, amended["amended"].pk}
    item = items[amended["amended"].pk]
    assert (item.source, item.final_label, item.contamination_pct, item.grade) == (
        "operator", None, Decimal("3.2"), "3A",
    )  # fmt: skip
    p = item.provenance
    assert (p["operator"], p["rationale_code"], p["note"]) == ("op-anna", "sample_analysis",
                                                               "lab says so")  # fmt: skip
    assert p["estimate"]["id"] == amended["estimate"].pk
    assert p["estimate"]["contamination_pct"] == 2.0
    event = AuditEvent.objects.get(action="dataset.frozen")
    assert event.payload["label_sources"] == {"operator": 1}


def test_a_final_label_wins_over_an_amendment(amended):
    label(amended["amended"], "4.0")

    version = datasets.freeze_version(actor=None, include_sources=[OPERATOR])

    item = version.items.get(railcar=amended["amended"])
    assert (item.source, item.contamination_pct) == ("consensus", Decimal("4.0"))


def test_a_later_acceptance_withdraws_the_amendment_as_a_label(amended):
    railcar = amended["amended"]
    review.decide(
        operator=operator_of("L1"), railcar=railcar, estimate=amended["estimate"], action="accept"
    )

    version = datasets.freeze_version(actor=None, include_sources=[OPERATOR])

    assert not version.items.filter(railcar=railcar).exists()


def test_including_amendments_changes_the_content_hash(amended):
    plain = datasets.freeze_version(actor=None)
    with_amendments = datasets.freeze_version(actor=None, include_sources=[OPERATOR])

    assert plain.content_hash != with_amendments.content_hash
    with pytest.raises(datasets.NothingChanged):
        datasets.freeze_version(actor=None, include_sources=[OPERATOR])


def test_the_admin_ticks_the_operator_source_on_the_freeze_form(amended, admin_user):
    client = client_for(admin_user)
    form = client.get(reverse("mlloop:datasets"))
    assert b'name="include_sources"' in form.content and b'value="operator"' in form.content

    client.post(reverse("mlloop:datasets"), {"name": "with ops", "include_sources": [OPERATOR]})

    assert DatasetItem.objects.filter(source="operator").count() == 1


def test_an_exported_version_carries_the_operators_provenance(amended, tmp_path):
    from mlloop.dataset_import import import_version
    from mlloop.export import export_version

    version = datasets.freeze_version(actor=None, include_sources=[OPERATOR])
    export_version(version, tmp_path / "out")

    with import_version(tmp_path / "out") as data:
        items = {item["railcar"]: item for item in data.items}
    item = items[str(amended["amended"].uid)]
    assert item["label"]["source"] == "operator"
    assert item["label"]["provenance"]["operator"] == "op-anna"
