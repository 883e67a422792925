"""Chinese PII masking applied before anything is stored or logged.

Masks mainland mobile numbers, 18-digit resident ID numbers (checksum verified), bank card numbers
(13–19 digits, Luhn verified, optionally grouped by spaces or dashes) and e-mail addresses. Order numbers
(13 digits starting with ``20``) are never treated as bank cards. Full-width digits are recognised.
"""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-]{1,64})@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24})"
)
_ID_CARD = re.compile(r"(?<!\d)(\d{17}[\dXx])(?![\dXx])")
# 13–19 digits, either contiguous or in groups of 4 (last group 1–7) separated by one space or dash.
_CARD = re.compile(r"(?<![\d])(\d{13,19}|\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,7})?)(?![\d])")
_MOBILE = re.compile(r"(?<!\d)(?:\+?86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?!\d)")

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def id_card_valid(value: str) -> bool:
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17].upper():
        return False
    month, day = int(value[10:12]), int(value[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or len(digits) < 12:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def is_order_number(digits: str) -> bool:
    return len(digits) == 13 and digits.startswith("20")


_FOLDABLE = (
    set("０１２３４５６７８９＠＋－．＿")
    | {chr(c) for c in range(0xFF21, 0xFF3B)}
    | {chr(c) for c in range(0xFF41, 0xFF5B)}
)


def _fold_digits(text: str) -> str:
    # Full-width digits, letters and e-mail/phone punctuation -> ASCII, one char for one char; Chinese
    # punctuation (，：。) is left as written.
    if not any(ch in _FOLDABLE for ch in text):
        return text
    return "".join(unicodedata.normalize("NFKC", ch) if ch in _FOLDABLE else ch for ch in text)


def _mask_email(m: re.Match[str]) -> str:
    local, domain = m.group(1), m.group(2)
    return f"{local[0]}***@{domain}"


def _mask_id(m: re.Match[str]) -> str:
    value = m.group(1)
    if not id_card_valid(value):
        return value
    return value[:3] + "*" * 13 + value[-2:]


def _mask_card(m: re.Match[str]) -> str:
    raw = m.group(1)
    digits = re.sub(r"[ -]", "", raw)
    if not 13 <= len(digits) <= 19 or is_order_number(digits) or not luhn_valid(digits):
        return raw
    return "*" * (len(digits) - 4) + digits[-4:]


def _mask_mobile(m: re.Match[str]) -> str:
    return f"{m.group(1)}****{m.group(3)}"


def mask_pii(text: str) -> str:
    """Return ``text`` with PII masked. Idempotent; non-PII text is returned unchanged."""
    if not text:
        return text
    folded = _fold_digits(text)
    out = _EMAIL.sub(_mask_email, folded)
    out = _ID_CARD.sub(_mask_id, out)
    out = _CARD.sub(_mask_card, out)
    out = _MOBILE.sub(_mask_mobile, out)
    return out if out != folded else text
