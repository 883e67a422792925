"""Console user management (admin only). Every write is audited."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from api.audit import add_audit
from api.auth import create_user
from api.db.models import AdminUser
from api.deps import CurrentAdmin, ServicesDep
from api.errors import AppError, Conflict, ErrorCode, NotFound

router = APIRouter(prefix="/api/v1/admin/users", tags=["users"])
# the id column's range (MySQL INT): a larger id is a 422, not a 500 (SQLite overflows past 2**63)
UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
USERNAME_MAX = 64  # the column's length


class UserOut(BaseModel):
    id: int
    username: str
    role: Literal["admin", "agent"]
    active: bool
    created_at: datetime


class UserList(BaseModel):
    items: list[UserOut]


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=USERNAME_MAX, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "agent"] = "agent"


def deleted_username(username: str, user_id: int) -> str:
    """The name a deactivated account keeps: frees its name for a new account and stays unique. The suffix (with
    the unique id) is kept whole and the name shortened instead: cutting the suffix of a long name left a 64-char
    name unchanged (never freed) and made two 60-char names collide (a 500 on the second delete)."""
    suffix = f"#deleted-{user_id}"
    return username[: USERNAME_MAX - len(suffix)] + suffix


def _out(u: AdminUser) -> UserOut:
    return UserOut(id=u.id, username=u.username, role=u.role, active=u.active, created_at=u.created_at)  # type: ignore[arg-type]


@router.get("", response_model=UserList)
async def list_users(services: ServicesDep, admin: CurrentAdmin) -> UserList:
    def query() -> list[UserOut]:
        with services.session_factory() as db:
            return [
                _out(u)
                for u in db.scalars(
                    select(AdminUser).where(AdminUser.active.is_(True)).order_by(AdminUser.id)
                )
            ]

    return UserList(items=await asyncio.to_thread(query))


@router.post("", response_model=UserOut, status_code=201)
async def add_user(body: UserCreate, services: ServicesDep, admin: CurrentAdmin) -> UserOut:
    def create() -> UserOut:
        with services.session_factory() as db:
            try:
                user = create_user(db, body.username, body.password, body.role)
                add_audit(db, admin.username, "user.create", body.username, {"role": body.role})
                db.commit()
            except IntegrityError as exc:
                db.rollback()
                raise Conflict() from exc
            return _out(user)

    return await asyncio.to_thread(create)


@router.delete("/{user_id}", status_code=204, response_class=Response)
async def delete_user(user_id: UserId, services: ServicesDep, admin: CurrentAdmin) -> Response:
    if user_id == admin.id:
        raise AppError(ErrorCode.CONFLICT, detail="cannot delete yourself")

    def deactivate() -> None:
        with services.session_factory() as db:
            user = db.get(AdminUser, user_id)
            if user is None or not user.active:
                raise NotFound()
            # Deactivate rather than delete: tickets and the audit log keep pointing at the account, and
            # every token of the account stops working at once (checked on each request).
            user.active = False
            user.username = deleted_username(user.username, user.id)
            add_audit(db, admin.username, "user.delete", str(user_id), None)
            db.commit()

    await asyncio.to_thread(deactivate)
    return Response(status_code=204)
