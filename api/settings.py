"""One settings object for the API (prefix ``API_``).

Embedded defaults (no environment): SQLite at ``$XIAOKE_DATA_DIR/xiaoke.db``, in-process session store,
inference server at http://127.0.0.1:8001. Production sets ``API_DATABASE_URL``, ``API_REDIS_URL`` and
``API_SERVING_URL`` and must set real secrets: the validator refuses the development defaults.

Secrets (every ``SecretStr`` setting) come from a file named by ``<VAR>_FILE``
(``API_SECRET_KEY_FILE=/run/secrets/api_secret_key``: what docker compose ``secrets:`` and the Kubernetes
manifests' Secret volume do, so no secret sits in a process environment) or from the environment
(``API_SECRET_KEY=...``: development, tests), never both. The passwords of MySQL and Redis may stay
out of the URLs: ``API_DATABASE_PASSWORD`` / ``API_REDIS_PASSWORD`` (or their ``_FILE``) are put into
``API_DATABASE_URL`` / ``API_REDIS_URL`` (which then carry none) when the connection is made.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)
from sqlalchemy.engine import make_url

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_SECRET_KEY = "xiaoke-development-secret-key-change-me"
# API_IDENTITY_SECRET in development when none is set: the demo page's signed demo customer works out of the box
DEV_IDENTITY_SECRET = "xiaoke-development-identity-secret-change-me"
FILE_SUFFIX = "_FILE"


def _is_secret(field: FieldInfo) -> bool:
    return field.annotation is SecretStr or SecretStr in get_args(field.annotation)


class SecretFileSource(PydanticBaseSettingsSource):
    """``API_<NAME>_FILE=<path>``: the secret setting ``<name>`` read from that file (trailing newlines dropped).
    Errors name the variable and the path, never the content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ reads every secret field at once

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.settings_cls.model_config.get("env_prefix", "")).upper()
        env = {key.upper(): value for key, value in os.environ.items()}
        out: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            var = f"{prefix}{name.upper()}"
            path = env.get(var + FILE_SUFFIX)
            if not _is_secret(field) or not path:
                continue
            if var in env:
                raise SettingsError(f"{var} and {var}{FILE_SUFFIX} are both set: set one of them")
            try:
                value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise SettingsError(f"{var}{FILE_SUFFIX}: cannot read {path}: {reason}") from None
            if not value:
                raise SettingsError(f"{var}{FILE_SUFFIX}: {path} is empty")
            out[name] = value
        return out


def _redis_url_with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    netloc = f"{userinfo}:{quote(password, safe='')}@{hostport}"
    return urlunsplit(parts._replace(netloc=netloc))


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting's error must not print the raw inputs (the secrets among them)
    model_config = SettingsConfigDict(
        env_prefix="API_", extra="ignore", env_file=None, populate_by_name=True, hide_input_in_errors=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            SecretFileSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    env: Literal["development", "test", "staging", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # idle keep-alive of client connections; longer than the reverse proxy's upstream idle time (nginx 60 s),
    # else the API closes a connection the proxy is about to reuse and the visitor gets a 502 / reset
    keepalive_timeout_s: int = Field(default=75, ge=1, le=3600)
    # on SIGTERM: how long open requests (event streams never end by themselves) may run before they are closed
    # and the app's own shutdown (flushing the durable writer) runs; inside Kubernetes' 30 s grace period
    # minus the 5 s preStop sleep
    graceful_shutdown_s: int = Field(default=15, ge=1, le=600)
    log_level: str = "INFO"

    data_dir: Path = Field(
        default=REPO_ROOT / "var", validation_alias=AliasChoices("XIAOKE_DATA_DIR", "API_DATA_DIR")
    )
    # None -> embedded SQLite under data_dir. Production: mysql+pymysql://user@host/db?charset=utf8mb4 plus
    # database_password, or the password inside the URL (mysql+pymysql://user:pw@host/...)
    database_url: SecretStr | None = None
    database_password: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1)
    # None -> in-process session store, in-process durable queue, in-memory rate limits.
    # redis://host:6379/0 plus redis_password, or redis://:pw@host:6379/0
    redis_url: SecretStr | None = None
    redis_password: SecretStr | None = None
    redis_prefix: str = "xiaoke:"
    # command connections per API process; a request finding all busy waits up to redis_pool_timeout_s for one
    # (then 503 DEPENDENCY_UNAVAILABLE). Event streams do not count: they share one pub/sub connection.
    redis_pool_size: int = Field(default=100, ge=1, le=10_000)
    redis_pool_timeout_s: float = Field(default=2.0, gt=0, le=30)

    serving_url: str = "http://127.0.0.1:8001"
    serving_connect_timeout_s: float = Field(default=0.25, gt=0)
    serving_timeout_s: float = Field(default=0.8, gt=0)  # whole /v1/nlu call incl. retry; < 1 s budget
    serving_max_concurrency: int = Field(default=8, ge=1)
    serving_retries: int = Field(default=1, ge=0, le=3)  # on connect errors only
    # An idle client waits this long for company before sending a text; under load texts also wait for the
    # request in flight (see serving_batches_in_flight). Every request costs Ray Serve several ms of CPU, so
    # fewer, fuller requests leave more CPU for the models (measurements: docs/benchmarks.md, whole stack).
    serving_batch_window_ms: float = Field(default=15.0, ge=0)
    serving_batch_max: int = Field(default=64, ge=1, le=64)
    # /v1/nlu requests outstanding per API process; texts arriving meanwhile wait and leave as one batch
    serving_batches_in_flight: int = Field(default=1, ge=1)
    serving_top_k: int = Field(default=5, ge=1, le=20)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=10.0, gt=0)

    secret_key: SecretStr = SecretStr(DEV_SECRET_KEY)
    access_token_ttl_s: int = Field(default=8 * 3600, ge=60)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_s: int = Field(default=300, ge=1)
    bootstrap_admin_username: str | None = None
    bootstrap_admin_password: SecretStr | None = None

    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_import_rows: int = Field(default=20_000, ge=1)
    message_max_chars: int = Field(default=1000, ge=1)
    chat_max_inflight: int = Field(default=512, ge=1)  # more concurrent turns -> 503 OVERLOADED at once

    session_ttl_s: int = Field(default=1800, ge=10)
    # A session queued for or served by a human agent (api.sessions.session_ttl): a long queue must not lose it.
    session_handoff_ttl_s: int = Field(default=4 * 3600, ge=10)
    session_history_turns: int = Field(default=10, ge=1)
    session_lock_timeout_s: float = Field(default=5.0, gt=0)

    rate_session_per_min: float = Field(default=30, gt=0)
    rate_session_burst: int = Field(default=10, ge=1)
    rate_ip_per_min: float = Field(default=120, gt=0)
    rate_ip_burst: int = Field(default=40, ge=1)

    writer_batch_size: int = Field(default=200, ge=1)
    writer_queue_max: int = Field(default=100_000, ge=100)  # embedded in-process queue bound
    writer_retry_max_s: float = Field(default=5.0, gt=0)

    widget_dist: Path = REPO_ROOT / "frontend" / "dist" / "widget"
    console_dist: Path = REPO_ROOT / "frontend" / "dist" / "console"
    demo_data_dir: Path = REPO_ROOT / "data" / "demo"
    seed_demo: bool = True

    # demo: the seeded demo_orders table (make run); webhook: the shop's order system (API_ORDER_WEBHOOK_URL);
    # none: no order system yet, order questions are offered a human (the Kubernetes and compose default)
    order_lookup: Literal["demo", "webhook", "none"] = "demo"
    order_webhook_url: str | None = None
    order_webhook_secret: SecretStr | None = None
    order_webhook_timeout_s: float = Field(default=2.0, gt=0)
    # Shared with the shop's backend, which signs its signed-in shopper's id for the widget embed (api/identity.py,
    # docs/operations.md "Verifying visitors"): orders are looked up only for visitors it signed. None: nobody is
    # verified (development falls back to DEV_IDENTITY_SECRET); required with API_ORDER_LOOKUP=webhook.
    identity_secret: SecretStr | None = None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        if self.env != "development":
            key = self.secret_key.get_secret_value()
            if key == DEV_SECRET_KEY or len(key) < 32:
                raise ValueError(
                    "API_SECRET_KEY must be set to a random value of at least 32 characters "
                    f"when API_ENV={self.env}"
                )
        if self.order_lookup == "webhook" and not self.order_webhook_url:
            raise ValueError("API_ORDER_WEBHOOK_URL is required when API_ORDER_LOOKUP=webhook")
        if (
            self.env == "production"
            and self.order_lookup == "webhook"
            and len(self.order_webhook_secret.get_secret_value() if self.order_webhook_secret else "") < 16
        ):
            # unsigned lookups would let anyone who finds the shop's endpoint read its orders
            raise ValueError(
                "API_ORDER_WEBHOOK_SECRET (>= 16 characters) is required for the webhook in production"
            )
        if self.env != "development" and self.identity_secret is not None:
            identity = self.identity_secret.get_secret_value()
            if identity == DEV_IDENTITY_SECRET or len(identity) < 32:
                raise ValueError(
                    "API_IDENTITY_SECRET must be a random value of at least 32 characters "
                    f"when API_ENV={self.env}"
                )
        if self.order_lookup == "webhook" and self.identity_key is None:
            # without it no visitor is verified and no order would ever be looked up
            raise ValueError(
                "API_IDENTITY_SECRET (>= 32 characters, shared with the shop's backend) is required with "
                "API_ORDER_LOOKUP=webhook: orders are looked up only for visitors the shop signed in"
            )
        return self

    @model_validator(mode="after")
    def _one_place_per_password(self) -> Settings:
        for name, url, password in (
            ("DATABASE", self.database_url, self.database_password),
            ("REDIS", self.redis_url, self.redis_password),
        ):
            if password is None:
                continue
            if url is None:
                raise ValueError(f"API_{name}_PASSWORD is set but API_{name}_URL is not")
            if urlsplit(url.get_secret_value()).password is not None:
                raise ValueError(
                    f"API_{name}_URL carries a password and API_{name}_PASSWORD is set: keep one"
                )
        return self

    @property
    def database_dsn(self) -> str:
        """SQLAlchemy URL with the password (secret: never log it)."""
        if self.database_url is None:
            return f"sqlite:///{self.data_dir / 'xiaoke.db'}"
        url = self.database_url.get_secret_value()
        if self.database_password is None:
            return url
        with_password = make_url(url).set(password=self.database_password.get_secret_value())
        return with_password.render_as_string(hide_password=False)

    @property
    def redis_dsn(self) -> str | None:
        """Redis URL with the password (secret: never log it); None -> embedded mode."""
        if self.redis_url is None:
            return None
        url = self.redis_url.get_secret_value()
        if self.redis_password is None:
            return url
        return _redis_url_with_password(url, self.redis_password.get_secret_value())

    @property
    def identity_key(self) -> str | None:
        """The secret visitor identities are checked with (secret: never log it); None: nobody is verified."""
        if self.identity_secret is not None:
            return self.identity_secret.get_secret_value()
        return DEV_IDENTITY_SECRET if self.env == "development" else None

    @property
    def embedded(self) -> bool:
        return self.redis_url is None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
