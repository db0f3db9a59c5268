"""The learning loop's schedules, editable by admins in django-celery-beat.

Retraining: Sundays 02:30 UTC, enabled. It only queues a run when the newest dataset version has
none yet, so it costs nothing until an admin freezes a new version.
Scoring: hourly at :05, enabled. Without a production model it does nothing; with one, it scores
only railcars this model has not scored, so each run is as long as the new arrivals.
"""

from django.db import migrations

RETRAIN = "mlloop: retrain on the newest dataset version weekly"
SCORE = "mlloop: score unlabeled railcars hourly"


def create_schedules(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    weekly, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="2", day_of_week="0", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    hourly, _ = CrontabSchedule.objects.get_or_create(
        minute="5", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    PeriodicTask.objects.get_or_create(
        name=RETRAIN, defaults={"task": "mlloop.retrain", "crontab": weekly}
    )
    PeriodicTask.objects.get_or_create(
        name=SCORE, defaults={"task": "mlloop.score_railcars", "crontab": hourly}
    )


def remove_schedules(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[RETRAIN, SCORE]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mlloop", "0003_training_promoted_over"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, remove_schedules)]
