"""Property-based fuzzing of the embedded API server on etcd (bounded; benchmarks/fuzz_apiserver.py runs longer).

Every generated request (see tests/security/fuzzing.py: mutated objects of every served kind, odd paths, query
parameters and patch documents) must get an answer within a few seconds, never a 5xx, a metav1.Status with a
matching code and a reason whenever it is not a 2xx, and must leave etcd's keyspace as it was unless it was an
accepted write; the server may log no error while serving it. Reproducible: derandomized, no example database.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from tests.security.fuzzing import FuzzRequest, FuzzServer, requests

pytestmark = pytest.mark.etcd

EXAMPLES = 1200
RESEED_EVERY = 40


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    with FuzzServer(Path(tmp_path_factory.mktemp("fuzz"))) as server:
        yield server


def test_fuzzed_requests_are_answered_with_a_status_and_leave_storage_alone(fuzz_server: FuzzServer) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(requests())
    def one_request(request: FuzzRequest) -> None:
        findings = fuzz_server.run(request)
        if fuzz_server.stats.requests % RESEED_EVERY == 0:
            fuzz_server.reseed()
        assert not findings, "\n\n".join(str(f) for f in findings)

    one_request()
    stats = fuzz_server.stats
    # The mix reaches past the first checks: many distinct answers, some accepted writes, every family tried.
    assert stats.requests >= EXAMPLES
    assert len(stats.outcomes) >= 30, stats.outcomes
    assert stats.accepted_writes > 0
    assert {"create", "update", "patch", "get", "list", "watch", "delete", "subresource", "raw"} <= set(stats.families)
    assert stats.server_errors == 0 and stats.rejected_with_storage_change == 0
