"""One text normalization for training and serving.

Training normalizes every example with the config stored in the bundle's manifest, and serving applies
the same function with the same config before tokenizing, so the two can never drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from pydantic import BaseModel, ConfigDict

_WS = re.compile(r"\s+")
# Zero-width and bidi control characters carry no meaning for intent or retrieval.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")


class NormalizeConfig(BaseModel):
    """How text is normalized. Stored in every bundle manifest."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    nfkc: bool = True  # full-width -> half-width (ＡＢＣ１２３ -> ABC123, ？ -> ?)
    lowercase: bool = True
    collapse_whitespace: bool = True
    traditional_to_simplified: bool = True  # 請問訂單 -> 请问订单


@lru_cache(maxsize=1)
def _zhconv():  # imported lazily: zhconv builds its tables on first use
    import zhconv

    return zhconv


def normalize(text: str, config: NormalizeConfig | None = None) -> str:
    """Normalize one text. Pure function; safe on any str (NUL and control chars are removed)."""
    cfg = config or NormalizeConfig()
    if cfg.nfkc:
        text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE.sub("", text)
    text = "".join(ch if (ch.isprintable() or ch.isspace()) else " " for ch in text)
    if cfg.traditional_to_simplified and any("\u4e00" <= ch <= "\u9fff" for ch in text):
        text = _zhconv().convert(text, "zh-cn")
    if cfg.lowercase:
        text = text.lower()
    if cfg.collapse_whitespace:
        text = _WS.sub(" ", text).strip()
    return text


def normalize_many(texts: list[str], config: NormalizeConfig | None = None) -> list[str]:
    return [normalize(t, config) for t in texts]
