"""Chinese PII masking with real-format examples."""

from __future__ import annotations

import pytest

from api.pii import id_card_valid, luhn_valid, mask_pii


def luhn_complete(prefix: str) -> str:
    for d in "0123456789":
        if luhn_valid(prefix + d):
            return prefix + d
    raise AssertionError


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的手机号是13812345678", "我的手机号是138****5678"),
        ("电话：+86 139-1234-5678，谢谢", "电话：139****5678，谢谢"),
        ("手机１５９１２３４５６７８", "手机159****5678"),  # full-width digits
        ("身份证11010519491231002X", "身份证110*************2X"),
        ("身份证号 11010519491231002x 办理", "身份证号 110*************2x 办理"),
        ("卡号6222021234567890128退款", "卡号***************0128退款"),
        ("卡号 6222 0212 3456 7890 128", "卡号 ***************0128"),
        ("visa 4111-1111-1111-1111", "visa ************1111"),
        ("邮箱 zhang.san+shop@example.com.cn", "邮箱 z***@example.com.cn"),
    ],
)
def test_masks_real_formats(text: str, masked: str) -> None:
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "订单2024112300123发货了吗",  # order number: never a bank card
        "12345678901",  # not a mobile prefix
        "110105194912310021",  # 18 digits with a wrong ID checksum (and not Luhn)
        "6222021234567890123",  # 19 digits failing Luhn
        "价格199元，满99包邮",
        "iPhone 15 有256G的现货吗",
        "",
    ],
)
def test_leaves_non_pii_alone(text: str) -> None:
    assert mask_pii(text) == text


def test_luhn_valid_order_number_is_not_masked() -> None:
    order = luhn_complete("202411230012")
    assert len(order) == 13 and luhn_valid(order)
    assert mask_pii(f"订单号{order}") == f"订单号{order}"


def test_mobile_inside_longer_digit_run_is_not_masked() -> None:
    assert mask_pii("流水号913812345678123") == "流水号913812345678123"


def test_checksums() -> None:
    assert id_card_valid("11010519491231002X")
    assert not id_card_valid("11010519491331002X")  # month 13
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")


def test_idempotent_and_several_items() -> None:
    text = "手机13812345678，邮箱a@b.cn，卡6222021234567890128"
    once = mask_pii(text)
    assert mask_pii(once) == once
    assert "13812345678" not in once and "a@b.cn" not in once and "6222021234567890128" not in once
