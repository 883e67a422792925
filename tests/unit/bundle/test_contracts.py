import pytest
from pydantic import ValidationError

from bundle.contracts import MAX_TEXT_CHARS, MAX_TEXTS, NluRequest


def test_nlu_request_bounds() -> None:
    assert NluRequest(texts=["在吗"]).top_k == 5
    for bad in (
        {"texts": []},
        {"texts": ["x"] * (MAX_TEXTS + 1)},
        {"texts": ["x" * (MAX_TEXT_CHARS + 1)]},
        {"texts": [""]},
        {"texts": [1]},
        {"texts": ["ok"], "top_k": 0},
        {"texts": ["ok"], "unexpected": True},
    ):
        with pytest.raises(ValidationError):
            NluRequest.model_validate(bad)
