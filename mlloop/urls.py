from django.urls import path

from mlloop import dataset_views, model_views

app_name = "mlloop"

urlpatterns = [
    path("ml/datasets/", dataset_views.dataset_list, name="datasets"),
    path("ml/datasets/compare/", dataset_views.compare, name="dataset-compare"),
    path("ml/datasets/<int:number>/", dataset_views.dataset_detail, name="dataset"),
    path(
        "ml/datasets/<int:number>/export.zip", dataset_views.export_archive, name="dataset-export"
    ),
    path("ml/models/", model_views.model_list, name="models"),
    path("ml/models/<int:number>/", model_views.model_detail, name="model"),
    path("ml/models/<int:number>/progress.json", model_views.progress, name="model-progress"),
    path("ml/models/<int:number>/promote/", model_views.promote, name="model-promote"),
]
