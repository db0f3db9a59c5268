from django.urls import path

from operations import operate_apis, operate_views, report_views, schedule_views, timeline_views

app_name = "operations"

urlpatterns = [
    path("ops/railcars/", timeline_views.railcars, name="railcars"),
    path(
        "ops/railcars/<int:railcar_id>/timeline/", timeline_views.timeline, name="railcar-timeline"
    ),
    path("ml/schedules/", schedule_views.schedules, name="schedules"),
    path("ml/schedules/<int:pk>/run/", schedule_views.run_now, name="schedule-run"),
    # Operator review (operations/operate_views.py).
    path("operate/", operate_views.operate, name="operate"),
    path("operate/feed.json", operate_views.feed, name="operate-feed"),
    path(
        "operate/unloadings/<int:railcar_id>/",
        operate_views.unloading_page,
        name="operate-unloading",
    ),
    path(
        "operate/unloadings/<int:railcar_id>/decide/", operate_views.decide, name="operate-decide"
    ),
    path(
        "operate/unloadings/<int:railcar_id>/layers/<int:index>/keyframe.jpg",
        operate_views.keyframe,
        name="operate-keyframe",
    ),
    # Reports, explanations, webhooks (operations/report_views.py).
    path("operate/unloadings/<int:railcar_id>/report/", report_views.report, name="report"),
    path("operate/reports.csv", report_views.reports_csv, name="reports-csv"),
    path(
        "operate/unloadings/<int:railcar_id>/layers/<int:index>/gradcam.png",
        report_views.explanation,
        name="explanation",
    ),
    path("operate/webhooks/", report_views.webhook_log, name="webhooks"),
]

# Under /api/v1/ (scrapannot.urls).
api_urlpatterns = [
    path("operate/unloadings/", operate_apis.FeedApi.as_view(), name="operate-api-feed"),
    path(
        "operate/unloadings/<int:railcar_id>/decision/",
        operate_apis.DecisionApi.as_view(),
        name="operate-api-decision",
    ),
    path(
        "unloadings/<int:railcar_id>/report/",
        report_views.UnloadingReportApi.as_view(),
        name="unloading-report",
    ),
]
