"""schemathesis over the published OpenAPI schema: every operation, called by the role it is
for with generated (mostly malformed) input, answers no 5xx and no status code the schema does
not document. Bounded: 25 examples per operation in the suite; a deeper run is

    SCHEMATHESIS_EXAMPLES=2000 bin/test tests/scrapannot/test_api_schemathesis.py
"""

import os

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis import checks

from scrapannot.roles import Role
from scrapannot.wsgi import application
from tests.conftest import grant_lines, user_with_roles

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application)

# Which role each part of the API is for.
ROLE_OF_PREFIX = (
    ("/api/v1/assignments/", Role.ANNOTATOR),
    ("/api/v1/operate/", Role.OPERATOR),
    ("/api/v1/unloadings/", Role.PLANT_SYSTEM),
    ("/api/v1/gold/", Role.ADMIN),
)


def role_for(path: str, method: str) -> Role:
    if path.endswith("/report/"):
        return Role.OPERATOR
    return next(role for prefix, role in ROLE_OF_PREFIX if path.startswith(prefix))


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """As Django's test client does: a request's end must not close the connection that holds
    the test's transaction (schemathesis calls the WSGI application itself)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def tokens(db):
    found = {}
    for role in (Role.ANNOTATOR, Role.OPERATOR, Role.PLANT_SYSTEM, Role.ADMIN):
        user = user_with_roles(f"fuzz-{role.name.lower()}", role)
        grant_lines(user, "L1", "L2", permission="post_unloadings")
        grant_lines(user, "L1", "L2", permission="operate_line")
        found[role] = Token.objects.create(user=user).key
    return found


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_no_5xx_and_only_documented_codes(case, tokens):
    token = tokens[role_for(case.path, case.method)]
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[checks.not_a_server_error, checks.status_code_conformance],
    )
