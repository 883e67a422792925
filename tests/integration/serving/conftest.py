"""Fixtures for serving tests that run the Serve application in local testing mode (in-process, no Ray)."""

from __future__ import annotations

from collections.abc import Iterator
from unittest import mock

import pytest


@pytest.fixture
def local_serve() -> Iterator[None]:
    """Ray 2.60: a @serve.batch queue asks for the replica context, which local testing mode lacks."""
    import ray.serve.batching as batching

    with mock.patch.object(
        batching._BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None
    ):
        yield
