"""``python -m api serve|migrate|create-admin``."""

from __future__ import annotations

import argparse
import getpass
import os
import sys


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
        log_config=None,
        server_header=False,
        timeout_keep_alive=settings.keepalive_timeout_s,
        timeout_graceful_shutdown=settings.graceful_shutdown_s,
    )
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from api.bootstrap import bootstrap_admin_from_settings, migrate_and_seed
    from api.db.engine import make_engine, make_session_factory
    from api.observability import configure_logging
    from api.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    engine = make_engine(settings.database_dsn)
    if args.wait is not None:
        from api.db.migrate import wait_for_schema

        current = wait_for_schema(engine, args.wait)
        engine.dispose()
        print("schema at head" if current else f"schema not at head after {args.wait:g} s", file=sys.stderr)
        return 0 if current else 1
    factory = make_session_factory(engine)
    counts = migrate_and_seed(
        engine, factory, settings.model_copy(update={"seed_demo": settings.seed_demo and not args.no_seed})
    )
    bootstrap_admin_from_settings(factory, settings)
    engine.dispose()
    print(f"migrated to head; seeded {counts or 'nothing'}")
    return 0


def _create_admin(args: argparse.Namespace) -> int:
    from api.bootstrap import ensure_admin
    from api.db.engine import make_engine, make_session_factory
    from api.db.migrate import upgrade
    from api.settings import get_settings

    settings = get_settings()
    username = (
        args.username or settings.bootstrap_admin_username or os.environ.get("API_BOOTSTRAP_ADMIN_USERNAME")
    )
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif settings.bootstrap_admin_password is not None:
        password = settings.bootstrap_admin_password.get_secret_value()
    elif sys.stdin.isatty():
        password = getpass.getpass("password: ")
    else:
        print("no password: use --password-stdin or API_BOOTSTRAP_ADMIN_PASSWORD", file=sys.stderr)
        return 2
    if not username:
        print("no username: use --username or API_BOOTSTRAP_ADMIN_USERNAME", file=sys.stderr)
        return 2
    if len(password) < 8:
        print("password must have at least 8 characters", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_dsn)
    upgrade(engine)
    created = ensure_admin(make_session_factory(engine), username, password, role=args.role)
    engine.dispose()
    print(f"{args.role} {username} {'created' if created else 'already exists'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m api", description="XiaoKe API")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API with uvicorn (default 127.0.0.1:8000)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--proxy-headers", action="store_true", help="trust X-Forwarded-For from --forwarded-allow-ips"
    )
    serve.add_argument("--forwarded-allow-ips", default="127.0.0.1")
    serve.set_defaults(func=_serve)
    migrate = sub.add_parser("migrate", help="alembic upgrade head + idempotent demo seed (or --wait for it)")
    migrate.add_argument("--no-seed", action="store_true")
    migrate.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="change nothing: wait until another process (the migration Job) has upgraded the schema to this "
        "version's head; exit 1 if it has not within SECONDS (the API pod's init container)",
    )
    migrate.set_defaults(func=_migrate)
    admin = sub.add_parser("create-admin", help="create a console user")
    admin.add_argument("--username")
    admin.add_argument("--password-stdin", action="store_true")
    admin.add_argument("--role", choices=["admin", "agent"], default="admin")
    admin.set_defaults(func=_create_admin)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
