from django.urls import path

from labeling import annotation_apis as ann
from labeling import annotation_views, apis, guideline_views, live_apis, ops_views

app_name = "labeling"

api_urlpatterns = [
    path("unloadings/", apis.UnloadingCreateApi.as_view(), name="unloading-create"),
    path("unloadings/open/", live_apis.UnloadingOpenApi.as_view(), name="unloading-open"),
    path(
        "unloadings/<uuid:uid>/frames/",
        live_apis.UnloadingAppendApi.as_view(),
        name="unloading-append",
    ),
    path(
        "unloadings/<uuid:uid>/close/",
        live_apis.UnloadingCloseApi.as_view(),
        name="unloading-close",
    ),
    path("assignments/next/", ann.NextAssignmentApi.as_view(), name="assignment-next"),
    path("assignments/<uuid:uid>/", ann.AssignmentDetailApi.as_view(), name="assignment-detail"),
    path(
        "assignments/<uuid:uid>/release/",
        ann.ReleaseAssignmentApi.as_view(),
        name="assignment-release",
    ),
    path("assignments/<uuid:uid>/rating/", ann.RatingApi.as_view(), name="assignment-rating"),
    path(
        "assignments/<uuid:uid>/frames/<uuid:frame_uid>/image/",
        ann.FrameImageApi.as_view(),
        name="assignment-frame-image",
    ),
    path(
        "assignments/<uuid:uid>/frames/<uuid:frame_uid>/mask-proposals/",
        ann.MaskProposalApi.as_view(),
        name="assignment-mask-proposal",
    ),
    path(
        "assignments/<uuid:uid>/frames/<uuid:frame_uid>/masks/",
        ann.MaskCreateApi.as_view(),
        name="assignment-mask-create",
    ),
    path(
        "assignments/<uuid:uid>/masks/<uuid:mask_uid>/",
        ann.MaskDeleteApi.as_view(),
        name="assignment-mask-delete",
    ),
    path(
        "assignments/<uuid:uid>/frames/<uuid:frame_uid>/exclusion/",
        ann.FrameExclusionApi.as_view(),
        name="assignment-frame-exclusion",
    ),
]

urlpatterns = [
    path("annotate/", annotation_views.queue, name="queue"),
    path("annotate/next/", annotation_views.take_next, name="take-next"),
    path("annotate/<uuid:uid>/", annotation_views.workspace, name="workspace"),
    path("guidelines/edit/", guideline_views.edit_guidelines, name="guidelines-edit"),
    path("ops/quality/", ops_views.quality_ops, name="quality-ops"),
    path("ops/quality/rejudge/", ops_views.rejudge_quality, name="quality-rejudge"),
    path("ops/frames/<uuid:uid>/thumbnail.jpg", ops_views.frame_thumbnail, name="frame-thumbnail"),
]
