"""Console authentication: scrypt password hashes, expiring HMAC-signed bearer tokens, login lockout."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.db.models import AdminUser
from api.errors import AppError, ErrorCode, Unauthorized

Role = Literal["admin", "agent"]

# scrypt: N=2^15, r=8, p=1 (32 MiB, ~50-100 ms here) -- OWASP's recommended minimum class.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P, _SCRYPT_LEN = 2**15, 8, 1, 32
_MAXMEM = 64 * 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    dk = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_SCRYPT_LEN, maxmem=_MAXMEM
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        algo, n, r, p, salt, expected = encoded.split("$")
        if algo != "scrypt":
            return False
        dk = hashlib.scrypt(
            password.encode(),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(_unb64(expected)),
            maxmem=_MAXMEM,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(dk, _unb64(expected))


# A real hash to burn the same time when the username does not exist (no user-enumeration timing).
_DUMMY_HASH: str | None = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
    return _DUMMY_HASH


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    username: str
    role: Role
    expires_at: int


class TokenSigner:
    """``v1.<payload>.<sig>`` with HMAC-SHA256 over ``v1.<payload>``; payload = sub, usr, role, iat, exp."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._key = hashlib.sha256(("xiaoke-access-token:" + secret).encode()).digest()
        self.ttl_s = ttl_s

    def issue(self, user_id: int, username: str, role: Role, now: float | None = None) -> str:
        iat = int(now if now is not None else time.time())
        payload = {
            "sub": user_id,
            "usr": username,
            "role": role,
            "iat": iat,
            "exp": iat + self.ttl_s,
            "jti": secrets.token_hex(8),
        }
        body = "v1." + _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = hmac.new(self._key, body.encode(), hashlib.sha256).digest()
        return f"{body}.{_b64(sig)}"

    def verify(self, token: str, now: float | None = None) -> TokenClaims:
        try:
            version, payload_b64, sig_b64 = token.split(".")
            if version != "v1":
                raise ValueError
            expected = hmac.new(self._key, f"v1.{payload_b64}".encode(), hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(sig_b64)):
                raise ValueError
            payload = json.loads(_unb64(payload_b64))
            claims = TokenClaims(
                int(payload["sub"]), str(payload["usr"]), payload["role"], int(payload["exp"])
            )
        except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
            raise Unauthorized() from exc
        if claims.role not in ("admin", "agent"):
            raise Unauthorized()
        if claims.expires_at <= int(now if now is not None else time.time()):
            raise Unauthorized()
        return claims


def authenticate(db: Session, username: str, password: str, *, max_failures: int, lock_s: int) -> AdminUser:
    """Check credentials; lock the account for ``lock_s`` after ``max_failures`` consecutive failures."""
    user = db.scalars(select(AdminUser).where(AdminUser.username == username)).first()
    now = datetime.now(UTC)
    if user is None or not user.active:
        verify_password(password, _dummy_hash())
        raise AppError(ErrorCode.INVALID_CREDENTIALS)
    if user.locked_until is not None and user.locked_until > now:
        retry = int((user.locked_until - now).total_seconds()) + 1
        raise AppError(ErrorCode.ACCOUNT_LOCKED, headers={"Retry-After": str(retry)})
    if not verify_password(password, user.password_hash):
        # Counted in the database, not read-modify-write here: concurrent wrong guesses each count (a lost
        # update would let parallel guessing never reach the lockout).
        db.execute(
            update(AdminUser)
            .where(AdminUser.id == user.id)
            .values(failed_logins=AdminUser.failed_logins + 1)
            .execution_options(synchronize_session=False)
        )
        db.execute(
            update(AdminUser)
            .where(AdminUser.id == user.id, AdminUser.failed_logins >= max_failures)
            .values(locked_until=now + timedelta(seconds=lock_s), failed_logins=0)
            .execution_options(synchronize_session=False)
        )
        db.commit()
        raise AppError(ErrorCode.INVALID_CREDENTIALS)
    user.failed_logins = 0
    user.locked_until = None
    db.commit()
    return user


def create_user(db: Session, username: str, password: str, role: Role) -> AdminUser:
    if len(password) < 8:
        raise AppError(ErrorCode.VALIDATION_ERROR, detail="password too short")
    user = AdminUser(username=username, password_hash=hash_password(password), role=role, active=True)
    db.add(user)
    db.flush()
    return user
