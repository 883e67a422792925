"""One error hierarchy: stable codes, one status table, one JSON shape, nothing leaked to the client."""

from __future__ import annotations

import pytest
from ray.exceptions import RayTaskError
from ray.serve.exceptions import BackPressureError

from bundle.contracts import ErrorResponse
from serving.errors import ERROR_TABLE, ErrorCode, ServingError, error_body, error_headers, status_of
from serving.ingress import map_exception


def test_every_code_has_status_and_bilingual_message() -> None:
    assert set(ERROR_TABLE) == set(ErrorCode)
    for code, (status, message) in ERROR_TABLE.items():
        assert 400 <= status < 600, code
        assert " / " in message, code


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ErrorCode.TEXTS_EMPTY, 422),
        (ErrorCode.INVALID_ENCODING, 400),
        (ErrorCode.PAYLOAD_TOO_LARGE, 413),
        (ErrorCode.OVERLOADED, 429),
        (ErrorCode.NOT_READY, 503),
        (ErrorCode.TIMEOUT, 504),
        (ErrorCode.INDEX_NOT_FOUND, 404),
        (ErrorCode.INTERNAL, 500),
    ],
)
def test_status_table(code: ErrorCode, status: int) -> None:
    assert status_of(code) == status == ServingError(code).status


def test_error_body_shape_and_no_detail_leak() -> None:
    err = ServingError(ErrorCode.INTERNAL, "secret /etc/passwd traceback")
    body = error_body(err.code, "rid-1")
    parsed = ErrorResponse.model_validate(body)
    assert parsed.error.code == "INTERNAL" and parsed.error.request_id == "rid-1"
    assert "secret" not in str(body)


def test_overload_carries_retry_after() -> None:
    assert error_headers(ServingError(ErrorCode.OVERLOADED, retry_after=2.4)) == {"retry-after": "2"}
    assert error_headers(ServingError(ErrorCode.OVERLOADED))["retry-after"] == "1"
    assert error_headers(ServingError(ErrorCode.TEXTS_EMPTY)) == {}


def test_map_exception() -> None:
    own = ServingError(ErrorCode.INDEX_EXISTS)
    assert map_exception(own) is own
    assert (
        map_exception(BackPressureError(num_queued_requests=5, max_queued_requests=5)).code
        is ErrorCode.OVERLOADED
    )
    assert map_exception(TimeoutError()).code is ErrorCode.TIMEOUT
    unknown = map_exception(KeyError("internal detail"))
    assert unknown.code is ErrorCode.INTERNAL


def test_map_exception_unwraps_ray_task_error() -> None:
    try:
        raise ServingError(ErrorCode.INDEX_BUILD_IN_PROGRESS)
    except ServingError as exc:
        wrapped = RayTaskError("build", "traceback text", exc)
    assert map_exception(wrapped).code is ErrorCode.INDEX_BUILD_IN_PROGRESS
    assert map_exception(wrapped.as_instanceof_cause()).code is ErrorCode.INDEX_BUILD_IN_PROGRESS


def test_serving_error_survives_pickling() -> None:
    import pickle

    import cloudpickle

    err = ServingError(ErrorCode.OVERLOADED, "queue full", retry_after=3)
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, pickle.loads)):
        back = loads(dumps(err))
        assert (back.code, back.detail, back.retry_after, back.status) == (
            ErrorCode.OVERLOADED,
            "queue full",
            3,
            429,
        )


def test_corrupt_index_has_its_own_code() -> None:
    assert ServingError(ErrorCode("INDEX_CORRUPT")).status == 409  # IndexStoreError codes map 1:1
