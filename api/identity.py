"""Visitor identity: the shop vouches for its signed-in shopper, the API checks the voucher when a session starts.

The widget's ``user_id`` alone is a claim anyone can make. The shop's own backend, where the shopper is logged
in, signs it with ``API_IDENTITY_SECRET`` and puts both into the widget embed (``data-user-id`` +
``data-user-signature``, or the ``mount()`` options); the widget sends them with the session's first turn
(``user_id`` + ``user_signature``) and only a verified id is kept in the session (``Session.user_verified``).
Order lookups are made for verified visitors only, with their id (api/dialog/orders.py).

Signature: ``<expires>.<hex>``, where ``expires`` is a unix time in seconds and ``hex`` the lowercase hex
HMAC-SHA256 of ``"<expires>.<user_id>"`` (UTF-8) under the secret (docs/operations.md "Verifying visitors").
A signature with an expiry, rather than a bare HMAC of the id: the embed sits in pages, caches and the
shopper's browser, and a signature copied from there works for anyone until it expires, so it must not be
good forever. The shop signs when it renders the page (recommended: 24 hours ahead); a signature valid for
longer than :data:`MAX_LIFETIME_S` is refused. Checked once, when the session starts: the session then keeps
its identity for its life (30 minutes after the last turn).

A signature that does not verify never fails the request: the session starts anonymous (the visitor can still
chat; order questions are told to log in), the failure is counted (``xiaoke_api_identity_checks_total``),
logged, and reported in the first response (``identity: "rejected"``) for the shop's developers.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from enum import StrEnum

from api.settings import Settings

# The shop's signature may be valid for at most this long (plus clock skew): a signature lasting years would
# be as good as none once copied out of a page.
MAX_LIFETIME_S = 7 * 24 * 3600
CLOCK_SKEW_S = 300
_SIGNATURE = re.compile(r"(\d{1,12})\.([0-9a-fA-F]{64})")

# The demo shop's signed-in customer: the demo page the API serves at / (API_ORDER_LOOKUP=demo outside production)
# and the demo dialogs chat as this customer, who owns the demo orders the dialogs look up (data/demo/orders.json).
DEMO_CUSTOMER_ID = "demo_user_1001"
DEMO_SIGNATURE_TTL_S = 24 * 3600


class IdentityCheck(StrEnum):
    """The outcome of checking the ``user_id`` a session was started with."""

    VERIFIED = "verified"
    ANONYMOUS = "anonymous"  # no user id sent
    UNSIGNED = "unsigned"  # a user id without a signature
    INVALID = "invalid"  # malformed, not made with our secret, or valid for longer than MAX_LIFETIME_S
    EXPIRED = "expired"
    NO_SECRET = "no_secret"  # a signed id, but this API has no API_IDENTITY_SECRET to check it with

    @property
    def reported(self) -> str:
        """What the chat response says about it: ``verified``, ``anonymous`` or ``rejected``."""
        if self in (IdentityCheck.VERIFIED, IdentityCheck.ANONYMOUS):
            return self.value
        return "rejected"


def _mac(secret: str, user_id: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"{expires}.{user_id}".encode(), hashlib.sha256).hexdigest()


def sign_identity(secret: str, user_id: str, expires: int) -> str:
    """The signature the shop's backend puts into the embed for ``user_id``, valid until ``expires`` (unix s)."""
    return f"{expires}.{_mac(secret, user_id, expires)}"


def check_identity(
    secret: str | None, user_id: str | None, signature: str | None, now: float | None = None
) -> IdentityCheck:
    """Whether ``signature`` vouches for ``user_id`` (constant-time comparison)."""
    if not user_id:
        return IdentityCheck.ANONYMOUS
    if not signature:
        return IdentityCheck.UNSIGNED
    if secret is None:
        return IdentityCheck.NO_SECRET
    m = _SIGNATURE.fullmatch(signature)
    if m is None:
        return IdentityCheck.INVALID
    expires = int(m.group(1))
    if not hmac.compare_digest(_mac(secret, user_id, expires), m.group(2).lower()):
        return IdentityCheck.INVALID
    now = time.time() if now is None else now
    if expires <= now:
        return IdentityCheck.EXPIRED
    if expires > now + MAX_LIFETIME_S + CLOCK_SKEW_S:
        return IdentityCheck.INVALID
    return IdentityCheck.VERIFIED


def demo_signature(secret: str, now: float | None = None) -> str:
    """The demo customer's signature, valid for a day: on the API's demo page, and for tools that chat as the
    demo customer (benchmarks/dialogs.py, the whole-stack tests)."""
    expires = int(time.time() if now is None else now) + DEMO_SIGNATURE_TTL_S
    return sign_identity(secret, DEMO_CUSTOMER_ID, expires)


def demo_identity(settings: Settings, now: float | None = None) -> tuple[str, str] | None:
    """``(user_id, signature)`` of the demo customer for the API's own demo page: only with the demo order table
    outside production (``API_ORDER_LOOKUP=demo``, the ``make run`` default), else None. Anyone who opens the
    demo page chats as the demo customer: that is the demo."""
    secret = settings.identity_key
    if settings.order_lookup != "demo" or settings.env == "production" or secret is None:
        return None
    return DEMO_CUSTOMER_ID, demo_signature(secret, now)
