"""Freezing dataset versions: splits drawn once, content hashes, histograms, comparison,
immutability and concurrent freezes."""

import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from adjudication.models import FinalLabel
from mlloop import datasets
from mlloop.datasets import (
    EmptyDataset,
    NothingChanged,
    Row,
    compare,
    content_hash,
    draw_split,
    freeze_version,
    split_of,
    version_rows,
)
from mlloop.models import DatasetItem, DatasetVersion, SplitAssignment
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.adjudication.factories import rated_railcar
from tests.concurrency import run_at_once
from tests.labeling.factories import pool_railcar
from tests.mlloop.dataset_factories import label, labeled_railcar, relabel


@pytest.mark.django_db
def test_freezing_with_no_final_label_is_refused_with_a_clear_error(admin_user):
    pool_railcar()  # a railcar without a label counts for nothing
    with pytest.raises(EmptyDataset, match="nothing to freeze"):
        freeze_version(actor=admin_user)
    assert not DatasetVersion.objects.exists()
    assert not SplitAssignment.objects.exists()
    assert not AuditEvent.objects.filter(action="dataset.frozen").exists()


@pytest.mark.django_db
def test_a_freeze_takes_each_railcars_current_label_once(admin_user):
    first, second = labeled_railcar("1.0"), labeled_railcar("3.0", "3A1", 0.2)
    current = relabel(first, "1.5", "3AH", 0.3)

    version = freeze_version(actor=admin_user, name="first", notes="for the pilot")

    assert (version.number, version.name, version.notes) == (1, "first", "for the pilot")
    assert version.railcar_count == 2 and version.created_by == admin_user
    items = {item.railcar_id: item for item in version.items.all()}
    assert items[first.pk].final_label == current
    assert (items[first.pk].contamination_pct, items[first.pk].grade) == (Decimal("1.5"), "3AH")
    assert items[first.pk].std_pct == 0.3
    assert items[second.pk].grade == "3A1"
    assert {i.split for i in items.values()} <= {"train", "val", "test"}
    assert split_of(first) == items[first.pk].split
    assert split_of(pool_railcar()) is None


@pytest.mark.django_db
def test_freezing_unchanged_content_is_refused_and_names_the_latest_version(admin_user):
    labeled_railcar("2.0")
    first = freeze_version(actor=admin_user)
    with pytest.raises(NothingChanged, match="Nothing changed since v1") as refused:
        freeze_version(actor=admin_user, name="again")
    assert refused.value.latest == first
    assert DatasetVersion.objects.count() == 1


@pytest.mark.django_db
def test_splits_never_change_across_versions_and_compare_shows_what_did(admin_user):
    railcars = [labeled_railcar(f"{i % 9}.{i % 10}") for i in range(30)]
    v1 = freeze_version(actor=admin_user)
    splits_v1 = dict(v1.items.values_list("railcar_id", "split"))
    # Shares changed after v1 apply only to railcars that have no split yet.
    set_policy(key=datasets.TEST_SHARE, value=0.5, actor=admin_user)
    set_policy(key=datasets.VAL_SHARE, value=0.5, actor=admin_user)
    added = [labeled_railcar("4.0") for _ in range(6)]
    relabel(railcars[3], "9.9", "cast iron", 0.5)

    v2 = freeze_version(actor=admin_user)

    splits_v2 = dict(v2.items.values_list("railcar_id", "split"))
    assert all(splits_v2[pk] == split for pk, split in splits_v1.items())
    assert {splits_v2[r.pk] for r in added} <= {"val", "test"}  # the new shares: no train left
    changes = compare(v1, v2)
    assert sorted(r.railcar_uid for r in changes.added) == sorted(str(r.uid) for r in added)
    assert changes.removed == [] and changes.split_changes == []
    [relabeled] = changes.relabeled
    assert relabeled.railcar_uid == str(railcars[3].uid)
    assert (relabeled.new.contamination_pct, relabeled.new.grade) == (Decimal("9.9"), "cast iron")
    assert (
        relabeled.old.contamination_pct
        == DatasetItem.objects.get(version=v1, railcar=railcars[3]).contamination_pct
    )
    assert set(relabeled.fields) == {"contamination_pct", "grade", "std_pct"}
    assert compare(v2, v1).removed == changes.added


@pytest.mark.django_db
def test_a_label_withdrawn_without_replacement_is_removed_in_the_next_version(admin_user):
    kept, withdrawn = labeled_railcar("1.0"), labeled_railcar("2.0")
    v1 = freeze_version(actor=admin_user)
    FinalLabel.objects.filter(railcar=withdrawn).update(superseded_at=timezone.now())
    v2 = freeze_version(actor=admin_user)
    changes = compare(v1, v2)
    assert [r.railcar_uid for r in changes.removed] == [str(withdrawn.uid)]
    assert changes.added == changes.relabeled == []
    assert list(v2.items.values_list("railcar_id", flat=True)) == [kept.pk]


@pytest.mark.django_db
def test_no_railcar_is_in_two_splits_within_or_across_versions(admin_user):
    railcars = [labeled_railcar() for _ in range(12)]
    freeze_version(actor=admin_user)
    for i, railcar in enumerate(railcars[:6]):
        relabel(railcar, f"{i}.5")
        freeze_version(actor=admin_user)
    per_railcar = {}
    for railcar_id, split in DatasetItem.objects.values_list("railcar_id", "split"):
        per_railcar.setdefault(railcar_id, set()).add(split)
    assigned = dict(SplitAssignment.objects.values_list("railcar_id", "split"))
    assert len(per_railcar) == 12
    assert all(splits == {assigned[pk]} for pk, splits in per_railcar.items())


def test_the_split_draw_follows_the_shares_and_depends_on_the_uid_alone():
    uids = [uuid.UUID(int=i * 7919 + 1) for i in range(4000)]
    counts = Counter(draw_split(u, val_share=0.15, test_share=0.15) for u in uids)
    # Binomial SD of a share over 4000 draws is about 0.006: 0.03 is five of them.
    assert abs(counts["val"] / 4000 - 0.15) < 0.03
    assert abs(counts["test"] / 4000 - 0.15) < 0.03
    assert [draw_split(u, val_share=0.15, test_share=0.15) for u in uids[:50]] == [
        draw_split(u, val_share=0.15, test_share=0.15) for u in uids[:50]
    ]
    assert {draw_split(u, val_share=0.0, test_share=0.0) for u in uids} == {"train"}


def test_the_content_hash_ignores_order_and_sees_every_field():
    rows = [Row(str(uuid.UUID(int=i)), "train", Decimal(f"{i}.5"), "3A", 0.1 * i) for i in range(5)]
    base = content_hash(rows)
    assert content_hash(list(reversed(rows))) == base
    first = rows[0]
    variants = [
        Row(str(uuid.UUID(int=99)), first.split, first.contamination_pct, first.grade, 0.0),
        Row(first.railcar_uid, "test", first.contamination_pct, first.grade, 0.0),
        Row(first.railcar_uid, first.split, Decimal("0.6"), first.grade, 0.0),
        Row(first.railcar_uid, first.split, first.contamination_pct, "3A1", 0.0),
        Row(first.railcar_uid, first.split, first.contamination_pct, first.grade, 1e-9),
    ]
    hashes = {content_hash([variant, *rows[1:]]) for variant in variants}
    assert len(hashes) == len(variants) and base not in hashes
    assert content_hash(rows[1:]) != base


@pytest.mark.django_db
def test_the_stored_hash_and_histograms_match_the_items(admin_user):
    for pct, grade in [("0.0", "3A"), ("0.9", "3A"), ("1.0", "3A1"), ("7.5", "3AH")]:
        labeled_railcar(pct, grade)
    labeled_railcar("100.0", "cast iron")
    version = freeze_version(actor=admin_user)
    assert version.content_hash == content_hash(version_rows(version).values())
    hist = version.histograms
    assert sum(hist["split"].values()) == 5
    assert hist["contamination"]["edges"] == list(datasets.CONTAMINATION_EDGES)
    totals = [sum(c) for c in zip(*hist["contamination"]["counts"].values(), strict=True)]
    # [0, 1): 0.0 and 0.9; [1, 2): 1.0; [7.5, 10): 7.5; the last bin is closed: 100.
    assert totals == [2, 1, 0, 0, 0, 0, 1, 0, 0, 1]
    grades = Counter()
    for per_split in hist["grade"].values():
        grades.update(per_split)
    assert grades == Counter({"3A": 2, "3A1": 1, "3AH": 1, "cast iron": 1})


@pytest.mark.django_db
def test_the_database_refuses_to_edit_a_version_its_items_or_a_split(admin_user):
    labeled_railcar()
    version = freeze_version(actor=admin_user)
    item = version.items.get()
    for attempt in (
        lambda: DatasetItem.objects.filter(pk=item.pk).update(split="test"),
        lambda: DatasetVersion.objects.filter(pk=version.pk).update(name="edited"),
        lambda: SplitAssignment.objects.update(split="val"),
        lambda: item.save(),
    ):
        with pytest.raises(IntegrityError, match="immutable"), transaction.atomic():
            attempt()
    item.refresh_from_db()
    assert version_rows(version)[str(item.railcar.uid)].split == item.split


def test_compare_reports_a_split_change_when_one_is_there():
    uid = str(uuid.uuid4())
    old = {uid: Row(uid, "train", Decimal("1.0"), "3A", 0.1)}
    new = {uid: Row(uid, "test", Decimal("1.0"), "3A", 0.1)}
    changes = datasets.diff(old, new)
    assert changes.split_changes == [(uid, "train", "test")]
    assert changes.relabeled == []


@pytest.mark.django_db
def test_the_freeze_is_audited_in_the_chain(admin_user):
    labeled_railcar()
    version = freeze_version(actor=admin_user, name="audited")
    event = AuditEvent.objects.get(action="dataset.frozen")
    assert event.actor_id == admin_user.pk and event.object_id == str(version.pk)
    assert event.payload["content_hash"] == version.content_hash
    assert event.payload["splits_drawn"] == 1
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_a_consensus_from_the_real_rating_path_is_frozen(admin_user):
    railcar, _ = rated_railcar(["4.0", "4.2", "4.1"], ["3A", "3A", "3A1"], prefix="real")
    version = freeze_version(actor=admin_user)
    item = version.items.get()
    assert item.railcar_id == railcar.pk
    assert (item.contamination_pct, item.grade) == (Decimal("4.1"), "3A")
    assert item.final_label.source == FinalLabel.Source.CONSENSUS


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_freezes_make_exactly_one_version(on_postgresql, admin_user):
    for _ in range(20):
        labeled_railcar()

    def freeze():
        try:
            return freeze_version(actor=admin_user).number
        except NothingChanged as exc:
            return f"unchanged since v{exc.latest.number}"

    results = run_at_once(freeze, threads=6)
    assert sorted(results, key=str) == [1] + ["unchanged since v1"] * 5
    assert SplitAssignment.objects.count() == 20
    assert AuditEvent.objects.filter(action="dataset.frozen").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_freezes_get_distinct_numbers_and_the_same_splits(on_postgresql, admin_user):
    for _ in range(10):
        labeled_railcar()
    fresh = iter([pool_railcar(layers=1, frames_per_layer=1, with_files=False) for _ in range(6)])

    def label_and_freeze():
        railcar = next(fresh)
        label(railcar, "5.0")  # committed (autocommit) before the freeze starts
        try:
            return freeze_version(actor=admin_user).number
        except NothingChanged:  # another thread's freeze already took this label
            return None

    numbers = [n for n in run_at_once(label_and_freeze, threads=6) if n is not None]
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    latest = DatasetVersion.objects.order_by("-number").first()
    assert latest.railcar_count == 16
    assigned = dict(SplitAssignment.objects.values_list("railcar_id", "split"))
    assert len(assigned) == 16
    for railcar_id, split in DatasetItem.objects.values_list("railcar_id", "split"):
        assert assigned[railcar_id] == split


@pytest.mark.django_db
def test_the_freeze_command_freezes_and_explains_a_refusal(admin_user, annotator, capsys):
    with pytest.raises(CommandError, match="nothing to freeze"):
        call_command("freeze_dataset")
    labeled_railcar()
    with pytest.raises(CommandError, match="no admin named"):
        call_command("freeze_dataset", user=annotator.username)
    call_command("freeze_dataset", name="nightly", user=admin_user.username)
    assert "froze v1: 1 railcars" in capsys.readouterr().out
    assert DatasetVersion.objects.get().created_by == admin_user
    with pytest.raises(CommandError, match="Nothing changed since v1"):
        call_command("freeze_dataset")
