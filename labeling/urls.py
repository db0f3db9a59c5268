from django.urls import path

from labeling import apis, views

app_name = "labeling"

api_urlpatterns = [
    path("unloadings/", apis.UnloadingCreateApi.as_view(), name="unloading-create"),
]

urlpatterns = [
    path("ops/quality/", views.quality_ops, name="quality-ops"),
    path("ops/quality/rejudge/", views.rejudge_quality, name="quality-rejudge"),
    path("ops/frames/<uuid:uid>/thumbnail.jpg", views.frame_thumbnail, name="frame-thumbnail"),
]
