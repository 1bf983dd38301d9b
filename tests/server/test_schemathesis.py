"""schemathesis against the app's own OpenAPI document, over a real socket: every operation,
a bounded number of generated cases each; no 5xx, and every status the document lists."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from server.app import create_app

from .conftest import settings as server_settings
from .conftest import uvicorn_server
from .fakes import FakeRunner

EXAMPLES = 25  # per operation: ~650 cases, ~45 s on the 2-core dev machine


@pytest.fixture
def fuzzed_server(tmp_path):
    app = create_app(server_settings(tmp_path, quota=100, max_queued=1000),
                     runner=FakeRunner())
    with uvicorn_server(app) as host:
        yield host


@pytest.mark.slow  # ~45 s: CI runs it (scripts/test.sh), the quick default suite does not
def test_generated_requests_get_no_server_error(fuzzed_server, capsys):
    schema = schemathesis.openapi.from_url(f"http://{fuzzed_server}/openapi.json")
    counts: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case):
            counts[case.operation.label] = counts.get(case.operation.label, 0) + 1
            response = case.call(timeout=10)
            case.validate_response(response, checks=[not_a_server_error,
                                                     status_code_conformance])
        check()
    with capsys.disabled():
        print(f"\nschemathesis: {sum(counts.values())} cases over {len(counts)} operations, "
              "0 server errors, every status documented")
    assert len(counts) >= 30
