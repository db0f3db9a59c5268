from django.urls import path

from adjudication import agreement_views, case_views

app_name = "adjudication"

urlpatterns = [
    path("adjudication/", case_views.queue, name="queue"),
    path("adjudication/reapply/", case_views.reapply, name="reapply"),
    path("adjudication/cases/<int:case_id>/", case_views.case, name="case"),
    path(
        "adjudication/cases/<int:case_id>/frames/<uuid:frame_uid>/image/",
        case_views.frame_image,
        name="case-frame-image",
    ),
    path("adjudication/railcars/<int:railcar_id>/reopen/", case_views.reopen, name="reopen"),
    path("adjudication/agreement/", agreement_views.agreement, name="agreement"),
]
