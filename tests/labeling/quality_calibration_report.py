"""Detection and false-alarm rates of the frame quality checks on the calibration sets
(tests/labeling/quality_calibration.py), as markdown tables:

    python -m tests.labeling.quality_calibration_report
"""

# ruff: noqa: E402 -- run as a script, Django must be set up before operations.synth is imported.
from __future__ import annotations

if __name__ == "__main__":
    from tests.benchmarks.common import setup_django

    setup_django()

from labeling.quality import CHECKS, QualityThresholds
from tests.labeling.quality_calibration import (
    FRAME_SIZE,
    PHOTOS,
    Outcome,
    evaluate,
    photo_baselines,
    photo_samples,
    synthetic_baseline,
    synthetic_samples,
    with_baselines,
)

WITH_BASELINE = ", camera baseline"  # the sets judged against each camera's own baseline


def rates(outcomes: list[Outcome], check: str) -> dict[str, object]:
    """Detection, false alarms and mild flags of one check, and per-level detection."""
    defect = [o for o in outcomes if check in o.sample.expected]
    # Frames with another check's defect are neither: a blurred frame may fairly read as hazy.
    clean = [o for o in outcomes if o.sample.degradation is None and check not in o.sample.expected]
    mild = [o for o in outcomes if o.sample.degradation == check and o.sample.mild]
    levels: dict[str, list[bool]] = {}
    for o in defect:
        levels.setdefault(o.sample.level, []).append(check in o.failed)
    return {
        "check": check,
        "detected": sum(check in o.failed for o in defect),
        "defective": len(defect),
        "false_alarms": sum(check in o.failed for o in clean),
        "clean": len(clean),
        "mild_flagged": sum(check in o.failed for o in mild),
        "mild": len(mild),
        "levels": {level: (sum(hits), len(hits)) for level, hits in levels.items()},
        "false_alarm_sources": sorted(o.sample.source for o in clean if check in o.failed),
        "mild_flagged_sources": sorted(o.sample.source for o in mild if check in o.failed),
    }


def calibration_report(
    *,
    thresholds: QualityThresholds | None = None,
    photos: tuple[str, ...] = PHOTOS,
    synthetic_railcars: int = 3,
    size: tuple[int, int] = FRAME_SIZE,
    baselines: bool = False,
) -> list[dict]:
    """One row per check and set ("photos", "synthetic", and with `baselines` the same two
    judged against each camera's baseline): detection and false-alarm counts."""
    return _report(_evaluate_sets(thresholds, photos, synthetic_railcars, size, baselines))


def _evaluate_sets(
    thresholds: QualityThresholds | None,
    photos: tuple[str, ...],
    synthetic_railcars: int,
    size: tuple[int, int],
    baselines: bool = False,
) -> dict[str, list[Outcome]]:
    thresholds = thresholds or QualityThresholds()
    sets = {
        "photos": evaluate(photo_samples(photos=photos, size=size), thresholds),
        "synthetic": evaluate(
            synthetic_samples(railcars=synthetic_railcars, size=size), thresholds
        ),
    }
    if baselines:
        cameras = photo_baselines(photos=photos, size=size)
        cameras["synthetic"] = synthetic_baseline(size=size)
        for name in ("photos", "synthetic"):
            sets[name + WITH_BASELINE] = with_baselines(sets[name], thresholds, cameras)
    return sets


def _report(sets: dict[str, list[Outcome]]) -> list[dict]:
    return [
        {"set": name, **rates(outcomes, check)}
        for name, outcomes in sets.items()
        for check in CHECKS[2:]
    ]


def cross_flags(outcomes: list[Outcome]) -> dict[str, dict[str, float]]:
    """For each degradation level, the share of its frames that each check flags."""
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(f"{o.sample.degradation or 'clean'}: {o.sample.level}", []).append(o)
    return {
        level: {c: sum(c in o.failed for o in group) / len(group) for c in CHECKS[2:]}
        for level, group in groups.items()
    }


def _rate(hits: int, total: int) -> str:
    return f"{hits}/{total} ({hits / total:.0%})" if total else "-"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| check | set | detection | by level | false alarms (clean) | flagged at mild level |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        levels = ", ".join(f"{k} {h}/{n}" for k, (h, n) in row["levels"].items())
        alarms = _rate(row["false_alarms"], row["clean"])
        if row["false_alarm_sources"]:
            alarms += f": {', '.join(row['false_alarm_sources'])}"
        mild = _rate(row["mild_flagged"], row["mild"])
        if row["mild_flagged_sources"]:
            mild += f": {', '.join(row['mild_flagged_sources'])}"
        lines.append(
            f"| {row['check']} | {row['set']} | {_rate(row['detected'], row['defective'])} "
            f"| {levels} | {alarms} | {mild} |"
        )
    return "\n".join(lines)


def cross_flag_table(outcomes: list[Outcome]) -> str:
    checks = CHECKS[2:]
    lines = [
        "| frames | " + " | ".join(checks) + " |",
        "| --- |" + " ---: |" * len(checks),
    ]
    for level, shares in cross_flags(outcomes).items():
        cells = " | ".join(f"{shares[c]:.0%}" if shares[c] else "." for c in checks)
        lines.append(f"| {level} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    for size in (FRAME_SIZE, (1280, 720)):
        sets = _evaluate_sets(None, PHOTOS, 6, size, baselines=True)
        print(f"\n## {size[0]}x{size[1]}\n")
        print(markdown_table(_report(sets)))
        for name, outcomes in sets.items():
            print(f"\nShare of {name} frames each check flags\n")
            print(cross_flag_table(outcomes))
