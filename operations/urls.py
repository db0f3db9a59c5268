from django.urls import path

from operations import schedule_views, timeline_views

app_name = "operations"

urlpatterns = [
    path("ops/railcars/", timeline_views.railcars, name="railcars"),
    path(
        "ops/railcars/<int:railcar_id>/timeline/", timeline_views.timeline, name="railcar-timeline"
    ),
    path("ml/schedules/", schedule_views.schedules, name="schedules"),
]
