import pytest

from bundle.normalize import NormalizeConfig, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３？", "abc123?"),  # full-width -> half-width, lower case
        ("請問訂單發貨了嗎", "请问订单发货了吗"),  # traditional -> simplified
        ("  在吗  \t\n 人呢 ", "在吗 人呢"),  # whitespace collapsed and trimmed
        ("退\u200b款\u202e多久", "退款多久"),  # zero-width / bidi controls removed
        ("iPhone 15 Pro", "iphone 15 pro"),
        ("a\x00b", "a b"),  # NUL becomes a separator, never passes through
        ("😊好评", "😊好评"),  # emoji kept
    ],
)
def test_normalize_examples(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_respects_config() -> None:
    cfg = NormalizeConfig(lowercase=False, traditional_to_simplified=False)
    assert normalize("請問 ABC", cfg) == "請問 ABC"


def test_normalize_is_idempotent() -> None:
    for raw in ["ＡＢＣ 請問", "  x  y ", "订单号：２０２４"]:
        once = normalize(raw)
        assert normalize(once) == once
