from django.urls import path

from labeling import apis

app_name = "labeling"

api_urlpatterns = [
    path("unloadings/", apis.UnloadingCreateApi.as_view(), name="unloading-create"),
]
