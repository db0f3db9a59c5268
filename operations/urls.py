from django.urls import path

from operations import operate_apis, operate_views, schedule_views, timeline_views

app_name = "operations"

urlpatterns = [
    path("ops/railcars/", timeline_views.railcars, name="railcars"),
    path(
        "ops/railcars/<int:railcar_id>/timeline/", timeline_views.timeline, name="railcar-timeline"
    ),
    path("ml/schedules/", schedule_views.schedules, name="schedules"),
    # --- operator review (operate helper) ---
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
    # --- end operator review ---
]

# The operator review API, under /api/v1/ (scrapannot.urls).
api_urlpatterns = [
    path("operate/unloadings/", operate_apis.FeedApi.as_view(), name="operate-api-feed"),
    path(
        "operate/unloadings/<int:railcar_id>/decision/",
        operate_apis.DecisionApi.as_view(),
        name="operate-api-decision",
    ),
]
