from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from labeling.urls import api_urlpatterns as labeling_api
from operations.urls import api_urlpatterns as operations_api
from scrapannot import views

api_v1 = [
    *labeling_api,
    *operations_api,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit_trail, name="audit-trail"),
    path("policies/", views.policies, name="policies"),
    path("", include("labeling.urls")),
    path("", include("adjudication.urls")),
    path("", include("mlloop.urls")),
    path("", include("operations.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
]

handler400 = "scrapannot.api.bad_request"
handler404 = "scrapannot.api.page_not_found"
handler500 = "scrapannot.api.server_error"
