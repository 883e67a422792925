"""Named FastAPI dependencies. Routes declare these; tests swap them with ``app.dependency_overrides``.

Dependencies that do no I/O are ``async def`` so FastAPI calls them inline instead of hopping to its
thread pool on every request (measured: ~5 % of the API's CPU per chat turn).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.auth import TokenClaims
from api.db.models import AdminUser
from api.errors import DependencyUnavailable, Forbidden, Unauthorized
from api.inference import InferenceClient
from api.services import Services
from api.sessions import SessionStore
from api.settings import Settings


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise DependencyUnavailable(detail="services not started")
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


async def get_session_store(services: ServicesDep) -> SessionStore:
    return services.sessions


async def get_inference_client(services: ServicesDep) -> InferenceClient:
    return services.inference


def get_db(services: ServicesDep) -> Iterator[Session]:
    with services.session_factory() as db:
        yield db


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
SessionStoreDep = Annotated[SessionStore, Depends(get_session_store)]
InferenceClientDep = Annotated[InferenceClient, Depends(get_inference_client)]
DbDep = Annotated[Session, Depends(get_db)]


IPV6_CLIENT_PREFIX = 64  # one subscriber's IPv6 network: every address in it is one client for the limits


def client_key(host: str) -> str:
    """The rate-limit identity of a client address: an IPv4 address as it is (IPv4-mapped IPv6 too), an IPv6
    address as its /64. One IPv6 subscriber is routed a whole /64 (often more): keyed by full address, a visitor
    got a fresh per-IP bucket (chat turns, logins) for every address they picked from it."""
    if ":" not in host:
        return host  # IPv4 (or a test client's name): the common case, no parsing per request
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host  # not an address: as given
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, IPV6_CLIENT_PREFIX), strict=False))
    return host


async def client_ip(request: Request) -> str:
    return client_key(request.client.host) if request.client else "unknown"


ClientIp = Annotated[str, Depends(client_ip)]


async def session_token(
    x_session_token: Annotated[str | None, Header(alias="X-Session-Token")] = None,
) -> str | None:
    return x_session_token


SessionToken = Annotated[str | None, Depends(session_token)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized()
    return token.strip()


def load_principal(services: Services, claims: TokenClaims) -> AdminUser | None:
    """The token's account if it is still active under the same name (else None), in a short session of its own:
    a request-scoped ``DbDep`` would hold a pooled connection for as long as a streaming response (SSE) runs."""
    with services.session_factory() as db:
        user = db.scalars(select(AdminUser).where(AdminUser.id == claims.user_id)).first()
    if user is None or not user.active or user.username != claims.username:
        return None
    return user


def current_principal(request: Request, services: ServicesDep) -> AdminUser:
    claims: TokenClaims = services.signer.verify(_bearer(request))
    user = load_principal(services, claims)
    if user is None:
        raise Unauthorized()
    request.state.actor = user.username
    request.state.claims = claims  # long-lived responses (SSE) re-check expiry and the account with these
    return user


def current_agent(user: Annotated[AdminUser, Depends(current_principal)]) -> AdminUser:
    if user.role not in ("agent", "admin"):
        raise Forbidden()
    return user


def current_admin(user: Annotated[AdminUser, Depends(current_principal)]) -> AdminUser:
    if user.role != "admin":
        raise Forbidden()
    return user


CurrentAgent = Annotated[AdminUser, Depends(current_agent)]
CurrentAdmin = Annotated[AdminUser, Depends(current_admin)]
