from django.urls import path

from adjudication import agreement_views, case_views, gold_apis, gold_views

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
    path("adjudication/gold/", gold_views.gold_page, name="gold"),
    path("adjudication/gold/import/", gold_views.gold_import, name="gold-import"),
    path("adjudication/gold/<int:railcar_id>/retire/", gold_views.gold_retire, name="gold-retire"),
]

api_urlpatterns = [
    path("gold/", gold_apis.GoldImportApi.as_view(), name="gold-import-api"),
]
