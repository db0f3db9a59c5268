"""Dataset versions: freeze the current final labels into an immutable, hashed version.

A railcar's split is drawn once, the first time a freeze takes it, from a hash of its uid (no
secret, so anyone holding the uid can re-derive it) against the split shares in force at that
moment; it is stored in `SplitAssignment` and never drawn again, so later changes of the shares
only affect railcars that have no split yet. No railcar can therefore cross between splits,
within or across versions (the database refuses an update of a split: migration 0002).

Freezing content equal to the latest version is refused (`NothingChanged`): a second version with
the same hash would only add noise to the list and to the training history. Content equal to an
older version (a relabel reverted) is a new version with that older hash.
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from adjudication.models import FinalLabel
from labeling.annotation_models import Grade
from labeling.models import Railcar
from mlloop.label_sources import label_sources
from mlloop.models import DatasetItem, DatasetVersion, Split, SplitAssignment
from scrapannot import audit
from scrapannot.audit import canonical_json
from scrapannot.policy import Policy, policy_values, register

VAL_SHARE = "mlloop.split_val_share"
TEST_SHARE = "mlloop.split_test_share"
# Fixed bin edges (percent) for the contamination histograms, so versions compare bin by bin.
# Fine where most railcars lie (seed 000: a few percent), coarse above.
CONTAMINATION_EDGES = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 25.0, 100.0)
# Any constant: the advisory lock that serializes freezes (distinct numbers, one split draw).
_FREEZE_LOCK_KEY = 0x5C4A_DA7A
SPLITS = tuple(Split.values)


class DatasetError(Exception):
    """A freeze that cannot be done; the message says why, for the admin."""


class EmptyDataset(DatasetError):
    def __init__(self) -> None:
        super().__init__("No railcar has a final label yet: there is nothing to freeze.")


class NothingChanged(DatasetError):
    def __init__(self, latest: DatasetVersion) -> None:
        self.latest = latest
        super().__init__(
            f"Nothing changed since v{latest.number} (content hash {latest.content_hash[:12]}): "
            "no new version was made."
        )


def register_dataset_policies() -> None:
    register(
        Policy(
            key=VAL_SHARE,
            default=0.15,
            description="Share of railcars drawn into the validation split the first time a "
            "dataset version takes them. A railcar's split never changes once drawn.",
            minimum=0.0,
            maximum=0.5,
        ),
        Policy(
            key=TEST_SHARE,
            default=0.15,
            description="Share of railcars drawn into the test split the first time a dataset "
            "version takes them. A railcar's split never changes once drawn.",
            minimum=0.0,
            maximum=0.5,
        ),
    )


def draw_split(railcar_uid: object, *, val_share: float, test_share: float) -> str:
    """The split a railcar's uid falls into: a uniform draw in [0, 1) from SHA-256 of the uid."""
    digest = hashlib.sha256(f"scrapannot split {railcar_uid}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_share:
        return Split.TEST
    if u < test_share + val_share:
        return Split.VAL
    return Split.TRAIN


def split_of(railcar: Railcar) -> str | None:
    """The railcar's split, or None while no dataset version has taken it."""
    return SplitAssignment.objects.filter(railcar=railcar).values_list("split", flat=True).first()


@dataclass(frozen=True)
class Row:
    """One railcar as a version holds it: what the content hash covers, and compare compares."""

    railcar_uid: str
    split: str
    contamination_pct: Decimal
    grade: str
    std_pct: float
    # Set only for a label source other than the final labels: the hash of a version made of
    # final labels alone stays what it always was.
    extra_source: str = ""

    def canonical(self) -> list[object]:
        row = [self.railcar_uid, self.split, str(self.contamination_pct), self.grade, self.std_pct]
        return [*row, self.extra_source] if self.extra_source else row


def content_hash(rows: Iterable[Row]) -> str:
    ordered = sorted(rows, key=lambda r: r.railcar_uid)
    return hashlib.sha256(canonical_json([r.canonical() for r in ordered]).encode()).hexdigest()


def histograms(rows: Iterable[Row]) -> dict[str, object]:
    rows = list(rows)
    edges = list(CONTAMINATION_EDGES)
    split_counts = dict.fromkeys(SPLITS, 0)
    grades = {s: dict.fromkeys(Grade.values, 0) for s in SPLITS}
    contamination = {s: [0] * (len(edges) - 1) for s in SPLITS}
    for row in rows:
        split_counts[row.split] += 1
        grades[row.split][row.grade] = grades[row.split].get(row.grade, 0) + 1
        value = float(row.contamination_pct)
        # Bins are [low, high); the last one is closed, so 100 % has a bin.
        index = next((i for i in range(len(edges) - 1) if value < edges[i + 1]), len(edges) - 2)
        contamination[row.split][index] += 1
    return {
        "split": split_counts,
        "grade": grades,
        "contamination": {"edges": edges, "counts": contamination},
    }


def version_rows(version: DatasetVersion) -> dict[str, Row]:
    items = version.items.values_list(
        "railcar__uid", "split", "contamination_pct", "grade", "std_pct", "final_label", "source"
    )
    return {
        str(uid): Row(str(uid), *rest, extra_source=source if label is None else "")
        for uid, *rest, label, source in items
    }


@dataclass(frozen=True)
class _Entry:
    """One railcar as a freeze takes it: its current final label, or a label source's."""

    railcar_id: int
    railcar_uid: str
    contamination_pct: Decimal
    grade: str
    std_pct: float
    source: str
    final_label: FinalLabel | None = None
    provenance: dict[str, object] = field(default_factory=dict)


def _entries(include_sources: Iterable[str]) -> list[_Entry]:
    labels = FinalLabel.objects.current().select_related("railcar").order_by("railcar_id")
    entries = [
        _Entry(
            label.railcar_id,
            str(label.railcar.uid),
            label.contamination_pct,
            label.grade,
            label.std_pct,
            label.source,
            final_label=label,
        )
        for label in labels
    ]
    taken = frozenset(e.railcar_id for e in entries)
    for key in sorted(set(include_sources)):
        source = label_sources().get(key)
        if source is None:
            raise DatasetError(f"Unknown label source {key!r}.")
        extra = [x for x in source.labels(taken) if x.railcar_id not in taken]
        uids = dict(
            Railcar.objects.filter(pk__in=[x.railcar_id for x in extra]).values_list("pk", "uid")
        )
        entries += [
            # No raters, no spread: a label source's value counts as exact.
            _Entry(
                x.railcar_id,
                str(uids[x.railcar_id]),
                x.contamination_pct,
                x.grade,
                0.0,
                key,
                provenance=x.provenance,
            )  # fmt: skip
            for x in extra
        ]
        taken |= {x.railcar_id for x in extra}
    return sorted(entries, key=lambda e: e.railcar_id)


def _splits_for(entries: list[_Entry]) -> tuple[dict[int, str], dict[int, str]]:
    """(split per railcar id, the ones drawn now): existing splits, new draws for the rest."""
    ids = [e.railcar_id for e in entries]
    existing = dict(
        SplitAssignment.objects.filter(railcar_id__in=ids).values_list("railcar_id", "split")
    )
    shares = policy_values("mlloop.split_")
    drawn = {
        e.railcar_id: draw_split(
            e.railcar_uid,
            val_share=float(shares[VAL_SHARE]),
            test_share=float(shares[TEST_SHARE]),
        )
        for e in entries
        if e.railcar_id not in existing
    }
    return existing | drawn, drawn


def _rows(entries: list[_Entry], splits: Mapping[int, str]) -> list[Row]:
    return [
        Row(
            e.railcar_uid,
            splits[e.railcar_id],
            e.contamination_pct,
            e.grade,
            e.std_pct,
            extra_source=e.source if e.final_label is None else "",
        )
        for e in entries
    ]


def _lock_freezes() -> None:
    # SQLite serializes writers by itself (the IMMEDIATE transaction mode in settings).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FREEZE_LOCK_KEY])


def freeze_version(
    *,
    actor: AbstractBaseUser | None,
    name: str = "",
    notes: str = "",
    actor_label: str | None = None,
    include_sources: Iterable[str] = (),
) -> DatasetVersion:
    """Freeze every railcar's current final label into a new version, and with
    `include_sources` (keys of registered label sources) their labels of railcars that have no
    final label; each item records its source.

    Raises EmptyDataset when no railcar has a final label, NothingChanged when the content equals
    the latest version's. Concurrent freezes are serialized: each gets its own number, and a
    railcar's split is drawn by exactly one of them."""
    include_sources = sorted(set(include_sources))
    with transaction.atomic():
        # The freeze lock first, the audit chain's lock last (see audit.record).
        _lock_freezes()
        labels = _entries(include_sources)
        if not labels:
            raise EmptyDataset
        splits, drawn = _splits_for(labels)
        rows = _rows(labels, splits)
        digest = content_hash(rows)
        latest = DatasetVersion.objects.order_by("-number").first()
        if latest is not None and latest.content_hash == digest:
            raise NothingChanged(latest)
        now = timezone.now()
        SplitAssignment.objects.bulk_create(
            [SplitAssignment(railcar_id=pk, split=s, assigned_at=now) for pk, s in drawn.items()]
        )
        number = (DatasetVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        version = DatasetVersion.objects.create(
            number=number,
            name=name,
            notes=notes,
            created_at=now,
            created_by=actor,
            content_hash=digest,
            railcar_count=len(rows),
            histograms=histograms(rows),
        )
        DatasetItem.objects.bulk_create(
            [
                DatasetItem(
                    version=version,
                    railcar_id=label.railcar_id,
                    final_label=label.final_label,
                    source=label.source,
                    provenance=label.provenance,
                    split=splits[label.railcar_id],
                    contamination_pct=label.contamination_pct,
                    grade=label.grade,
                    std_pct=label.std_pct,
                )
                for label in labels
            ],
            batch_size=2000,
        )
        audit.record(
            action="dataset.frozen",
            actor=actor,
            actor_label=actor_label,
            obj=version,
            payload={
                "number": number,
                "name": name,
                "content_hash": digest,
                "railcar_count": len(rows),
                "splits": version.histograms["split"],
                "splits_drawn": len(drawn),
                # Only when the admin included another label source: what it added.
                **(
                    {
                        "label_sources": {
                            key: sum(1 for e in labels if e.final_label is None and e.source == key)
                            for key in include_sources
                        }
                    }
                    if include_sources
                    else {}
                ),
            },
        )
    return version


@dataclass(frozen=True)
class Relabel:
    railcar_uid: str
    old: Row
    new: Row
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    added: list[Row] = field(default_factory=list)
    removed: list[Row] = field(default_factory=list)
    relabeled: list[Relabel] = field(default_factory=list)
    # (railcar uid, old split, new split): must stay empty; a non-empty list is a leak.
    split_changes: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def changed(self) -> int:
        return len(self.added) + len(self.removed) + len(self.relabeled)


LABEL_FIELDS = ("contamination_pct", "grade", "std_pct")


def diff(old: Mapping[str, Row], new: Mapping[str, Row]) -> Comparison:
    """What changed from `old` to `new` (rows keyed by railcar uid)."""
    result = Comparison(
        added=[new[k] for k in sorted(new.keys() - old.keys())],
        removed=[old[k] for k in sorted(old.keys() - new.keys())],
    )
    for key in sorted(old.keys() & new.keys()):
        before, after = old[key], new[key]
        if before.split != after.split:
            result.split_changes.append((key, before.split, after.split))
        changed = tuple(f for f in LABEL_FIELDS if getattr(before, f) != getattr(after, f))
        if changed:
            result.relabeled.append(Relabel(key, before, after, changed))
    return result


def compare(a: DatasetVersion, b: DatasetVersion) -> Comparison:
    """Railcars added, removed and relabeled from version `a` to version `b`."""
    return diff(version_rows(a), version_rows(b))


@dataclass(frozen=True)
class FreezePreview:
    railcars: int
    latest: DatasetVersion | None
    changes: Comparison | None


def preview(*, include_sources: Iterable[str] = ()) -> FreezePreview:
    """What a freeze now would take, and what changed since the latest version (read only:
    railcars without a split show the split they would draw)."""
    labels = _entries(include_sources)
    splits, _ = _splits_for(labels)
    rows = {r.railcar_uid: r for r in _rows(labels, splits)}
    latest = DatasetVersion.objects.order_by("-number").first()
    changes = diff(version_rows(latest), rows) if latest is not None else None
    return FreezePreview(railcars=len(rows), latest=latest, changes=changes)
