"""schemathesis against the API's own OpenAPI schema (issue #15): every operation with generated requests, valid and
not, as a machine client with every scope, and stateful sequences following the links between operations. Wanted: no
server error, and every answer as the schema says (status code, content type, headers, body).

The calls go through the WSGI app in this process and this test's database transaction, on a small world with a
program, a partner with people, points, a reward, a referral and a claim, so that ids in answers lead somewhere."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integrations.world import api_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
)

APP = get_wsgi_application()


@pytest.fixture(autouse=True)
def keep_the_tests_connection():
    """The WSGI handler closes the database connection after each request; Django's test client stops it doing
    so, and so does this: the calls run inside the test's transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Read once, through the app itself (no database needed).
schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", APP)


@pytest.fixture
def world(db):
    return api_world()


@schema.parametrize()
@FUZZ
@pytest.mark.django_db
def test_every_operation_answers_as_its_schema_says(case, world):
    case.call_and_validate(headers={"Authorization": f"Bearer {world.key}"}, checks=CHECKS)


@pytest.mark.django_db
def test_sequences_of_operations_answer_as_the_schema_says(world):
    machine = schema.as_state_machine()

    class Workflow(machine):
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {world.key}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    Workflow.run(
        settings=settings(
            max_examples=20, stateful_step_count=6, deadline=None, suppress_health_check=list(HealthCheck),
            derandomize=True, database=None,
        )
    )  # fmt: skip
