from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from adjudication.urls import api_urlpatterns as adjudication_api
from labeling.urls import api_urlpatterns as labeling_api
from operations.urls import api_urlpatterns as operations_api
from scrapannot import views
from scrapannot.roles import Role, role_required

# The browsable docs are for admins (linked from their pages and the Django admin); the schema
# they read stays where API clients already fetch it.
api_docs = role_required(Role.ADMIN)(SpectacularSwaggerView.as_view(url_name="schema"))
api_redoc = role_required(Role.ADMIN)(SpectacularRedocView.as_view(url_name="schema"))

api_v1 = [
    *labeling_api,
    *adjudication_api,
    *operations_api,
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", api_docs, name="api-docs"),
    path("redoc/", api_redoc, name="api-redoc"),
]

urlpatterns = [
    # First: the annotators' loop calls the API several times a second each, and Django tries
    # the patterns in order (no page's path starts with api/).
    path("api/v1/", include(api_v1)),
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
]

handler400 = "scrapannot.api.bad_request"
handler404 = "scrapannot.api.page_not_found"
handler500 = "scrapannot.api.server_error"
