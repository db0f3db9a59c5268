from django.urls import path

from operations import report_views, schedule_views, timeline_views

app_name = "operations"

urlpatterns = [
    path("ops/railcars/", timeline_views.railcars, name="railcars"),
    path(
        "ops/railcars/<int:railcar_id>/timeline/", timeline_views.timeline, name="railcar-timeline"
    ),
    path("ml/schedules/", schedule_views.schedules, name="schedules"),
    # The reports helper's (operations/report_views.py).
    path("operate/unloadings/<int:railcar_id>/report/", report_views.report, name="report"),
    path("operate/reports.csv", report_views.reports_csv, name="reports-csv"),
    path(
        "operate/unloadings/<int:railcar_id>/layers/<int:index>/gradcam.png",
        report_views.explanation,
        name="explanation",
    ),
    path("operate/webhooks/", report_views.webhook_log, name="webhooks"),
]

api_urlpatterns = [
    path(
        "unloadings/<int:railcar_id>/report/",
        report_views.UnloadingReportApi.as_view(),
        name="unloading-report",
    ),
]
