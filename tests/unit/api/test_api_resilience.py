"""Input hygiene at the edge: invisible-only messages are empty; visible text keeps its format characters."""

from __future__ import annotations

import pytest

from api.chat import clean_message
from api.errors import AppError, ErrorCode


@pytest.mark.parametrize("message", ["\u200b", "\ufeff\u202e", " \u200b\u200d\u2060 \n", "\u202e\u202c"])
def test_invisible_only_message_is_empty(message: str) -> None:
    with pytest.raises(AppError) as info:
        clean_message(message, 1000)
    assert info.value.code == ErrorCode.MESSAGE_EMPTY


@pytest.mark.parametrize("message", ["包\u200b邮\u200d吗", "\u202e包邮吗\u202c", "👨\u200d👩\u200d👧", "a"])
def test_visible_text_keeps_format_characters(message: str) -> None:
    assert clean_message(message, 1000) == message
