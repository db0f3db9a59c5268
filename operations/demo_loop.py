"""The learning loop, once, for a demo: calibrate the raters, freeze a dataset version, train,
promote, and score, so that every page has its content on a first run (the case page's model
estimate and calibrated consensus, the model registry, the schedules' last runs).

Each scheduled step is sent as the schedules page's "Run now" sends it (`operations.schedules`),
so it is audited and the page says when it last ran; freezing is an admin's act, done here
through the same function as the datasets page. Nothing is done twice: once the demo has sent a
step (its audit events say so), or once a model is in production, the loop has run already,
whatever came of it (too few labels to train on, say: the schedules page's "Run now" retries).
"""

from dataclasses import dataclass, field

from django_celery_beat.models import PeriodicTask

from adjudication import aggregation
from mlloop import registry
from mlloop.datasets import DatasetError, freeze_version
from mlloop.models import DatasetVersion, ModelVersion, RailcarScore
from operations import schedules
from scrapannot.models import AuditEvent

ACTOR_LABEL = "demo"
CALIBRATE = "adjudication.estimate_calibrations"
RETRAIN = "mlloop.retrain"
SCORE = "mlloop.score_railcars"


@dataclass
class LoopReport:
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "\n".join(self.lines)


def _run_scheduled(task_name: str, report: LoopReport) -> bool:
    task = PeriodicTask.objects.filter(task=task_name).order_by("pk").first()
    if task is None:
        report.lines.append(f"no schedule runs {task_name}: skipped")
        return False
    schedules.run_now(task_id=task.pk, actor=None, actor_label=ACTOR_LABEL)
    return True


def close_the_loop() -> LoopReport:
    """Run the loop once where no model is in production yet (tasks run in-process when there
    is no broker, or on the workers otherwise)."""
    report = LoopReport()
    sent = AuditEvent.objects.filter(action=schedules.RUN_NOW, actor_label=ACTOR_LABEL).exists()
    if sent or registry.production() is not None:
        report.lines.append("The learning loop has run already (see the schedules page).")
        return report
    if _run_scheduled(CALIBRATE, report):
        # Railcars aggregated before the raters were calibrated get their calibrated consensus.
        outcomes = aggregation.reapply(actor=None)
        report.lines.append(f"raters calibrated; aggregation re-applied to {outcomes['railcars']}")
    try:
        version = freeze_version(actor=None, actor_label=ACTOR_LABEL, name="demo")
        report.lines.append(f"dataset v{version.number} frozen ({version.railcar_count} railcars)")
    except DatasetError as exc:
        report.lines.append(f"no dataset version frozen: {exc}")
        if not DatasetVersion.objects.exists():
            return report
    _run_scheduled(RETRAIN, report)
    run = ModelVersion.objects.order_by("-number").first()
    if run is None:
        report.lines.append("no training run was queued")
        return report
    report.lines.append(f"model v{run.number}: {run.status}")
    if run.status == ModelVersion.Status.FAILED:
        report.lines.append(run.log.splitlines()[-1] if run.log else "")
    if registry.production() is not None and _run_scheduled(SCORE, report):
        report.lines.append(
            f"model v{registry.production().number} in production; "
            f"{RailcarScore.objects.count()} railcar scores"
        )
    return report
