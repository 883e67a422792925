"""The whole stack on free loopback ports, for fault tests, benchmarks and browser tests.

``Stack`` starts, inside the *current* network namespace (run it under ``scripts/in_netns.sh`` when Ray is
involved), each of these as a child process with its own log file under ``workdir/logs``:

* ``redis``   private ``redis-server`` (AOF on by default, like production: restarts keep sessions + journal)
* ``mariadb`` private ``mariadbd`` with a fresh datadir (or ``database="sqlite"``: embedded SQLite file)
* ``serving`` the inference server: ``scripts/serve.sh cpu`` with a temp copy of ``serving/config/cpu.yaml``
  whose port is free, ``SERVING_MODEL_STORE`` = a private copy of the tiny test bundles (or a given store);
  ``serving="fake"`` runs the deterministic FakeNlu (tests/unit/api/api_fakes.py) instead, without Ray;
  ``serving="none"`` starts nothing (the API answers ``degraded``)
* ``proxy``   a ``FaultProxy`` in this process in front of serving (latency / refusal injection)
* ``api``     ``python -m api migrate`` then ``python -m api serve`` with ``API_*`` env, bootstrap admin

Every process is started by the harness and stopped only by it (``stop``/``kill``/``start``/``restart``).
On an exception inside the ``with`` block (or a failed start) the tail of every log is printed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from tests.stack.proxy import FaultProxy

REPO = Path(__file__).resolve().parents[2]
PY = (
    str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
)
ServingMode = Literal["ray", "fake", "none"]
DatabaseMode = Literal["mysql", "sqlite"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int, host: str = "127.0.0.1") -> bool:
    """True once something accepts TCP connections on host:port."""
    with socket.socket() as probe:
        return probe.connect_ex((host, port)) == 0


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive:
            raise StackError(f"{what}: process {proc.name} exited with {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise StackError(f"{what}: not ready after {timeout_s:.0f} s")


class StackError(RuntimeError):
    pass


@dataclass
class Proc:
    """One child process (and its descendants) started by the harness."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path = REPO
    ready: Callable[[], bool] | None = None
    ready_timeout_s: float = 60.0
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    starts: int = 0

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None else None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def start(self, wait: bool = True) -> None:
        if self.alive:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"\n===== start #{self.starts + 1}: {' '.join(self.argv)}\n".encode())
        log.flush()
        # Own session (process group): stop/kill reach every descendant (Ray's raylet, workers, ...).
        self.popen = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.starts += 1
        if wait and self.ready is not None:
            wait_for(self.ready, self.ready_timeout_s, f"{self.name} ready", self)

    def _tree(self) -> list[Any]:
        import psutil

        if self.popen is None:
            return []
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process and its live descendants so far."""
        import psutil

        total = 0.0
        for p in self._tree():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def cpu_by_process(self) -> dict[str, float]:
        """CPU seconds of the tree by process kind (a Ray worker's title, e.g. ``ray::ProxyActor``, else the
        executable name), for breaking a tree's CPU down."""
        import psutil

        out: dict[str, float] = {}
        for p in self._tree():
            with contextlib.suppress(psutil.Error):
                cmd = p.cmdline()
                head = cmd[0] if cmd else p.name()
                if head.startswith("ray::"):
                    kind = head[5:].split()[0].split(".")[0]  # ray::ServeReplica:app:Dep.method -> ...:Dep
                else:
                    kind = Path(head).name
                    if kind.startswith("python") and len(cmd) > 2 and cmd[1] == "-m":
                        kind = cmd[2]
                    elif kind.startswith("python") and len(cmd) > 1:
                        kind = Path(cmd[1]).name
                t = p.cpu_times()
                out[kind] = out.get(kind, 0.0) + t.user + t.system
        return out

    def rss_bytes(self) -> int:
        import psutil

        total = 0
        for p in self._tree():
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def _signal_tree(self, sig: int) -> None:
        import psutil

        procs = self._tree()  # collect first: children are re-parented once the root dies
        if self.popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, sig)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM the tree, SIGKILL what is left after ``timeout_s``."""
        if self.popen is None:
            return
        import psutil

        tree = self._tree()
        if self.popen.poll() is None:
            self._signal_tree(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        _gone, alive = psutil.wait_procs([p for p in tree if p.is_running()], timeout=2)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=5)

    def kill(self) -> None:
        """SIGKILL the whole tree at once (a crash)."""
        if self.popen is None:
            return
        import psutil

        tree = self._tree()
        self._signal_tree(signal.SIGKILL)
        psutil.wait_procs(tree, timeout=5)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def restart(self, wait: bool = True) -> None:
        self.stop()
        self.start(wait=wait)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Stack:
    """Context manager: ``with Stack(serving="ray") as st: httpx.post(st.api_url + "/api/v1/chat", ...)``."""

    def __init__(
        self,
        *,
        serving: ServingMode = "ray",
        database: DatabaseMode = "mysql",
        redis: bool = True,
        redis_persist: bool = True,
        model_store: Path | None = None,
        workdir: Path | None = None,
        api_env: Mapping[str, str] | None = None,
        admin: tuple[str, str] = ("stack-admin", "stack-admin-pass-1"),
        serving_num_cpus: int | None = 2,
        api_workers: int = 1,
        fault_proxy: bool = True,
        serving_replicas: int | None = None,
        keep_workdir: bool | None = None,
        log_tail_lines: int = 40,
    ) -> None:
        self.serving_mode = serving
        self.database_mode = database
        self.use_redis = redis
        self.redis_persist = redis_persist
        self.model_store_arg = model_store
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="xiaoke-stack-"))
        # XIAOKE_STACK_KEEP=1 keeps logs and data dirs for a post-mortem
        self.keep_workdir = (
            keep_workdir if keep_workdir is not None else os.environ.get("XIAOKE_STACK_KEEP") == "1"
        )
        self.api_env_extra = dict(api_env or {})
        self.admin = admin
        self.serving_num_cpus = serving_num_cpus
        self.api_workers = api_workers
        # False: the API talks to serving directly (benchmarks: no extra hop, no proxy thread in this process)
        self.use_fault_proxy = fault_proxy
        self.serving_replicas = serving_replicas  # None: as serving/config/cpu.yaml says
        self.log_tail_lines = log_tail_lines
        self.logs = self.workdir / "logs"
        self.data = self.workdir / "data"
        self.procs: dict[str, Proc] = {}
        self.proxy: FaultProxy | None = None
        self.ports: dict[str, int] = {}
        self.db_password = secrets.token_urlsafe(12)
        self.secret_key = secrets.token_urlsafe(32)
        self.identity_secret = secrets.token_urlsafe(32)

    def demo_identity(self) -> dict[str, str]:
        """``user_id`` + ``user_signature`` of the demo customer (who owns the demo orders), signed as the API signs
        its own demo page: for the body of a session's first turn, so that its order lookups are answered."""
        from api.identity import DEMO_CUSTOMER_ID, demo_signature

        return {"user_id": DEMO_CUSTOMER_ID, "user_signature": demo_signature(self.identity_secret)}

    # ---- URLs ----------------------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['api']}"

    @property
    def serving_url(self) -> str:
        """The inference server itself (not through the proxy)."""
        return f"http://127.0.0.1:{self.ports['serving']}"

    @property
    def serving_proxy_url(self) -> str:
        """What the API is configured with (the fault proxy in front of serving, or serving itself when the
        stack runs without the proxy)."""
        if self.proxy is None:
            return f"http://127.0.0.1:{self.ports['proxy_upstream']}"
        return self.proxy.url

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports['redis']}/0"

    @property
    def database_url(self) -> str:
        if self.database_mode == "sqlite":
            return f"sqlite:///{self.data / 'xiaoke.db'}"
        return f"mysql+pymysql://xiaoke:{self.db_password}@127.0.0.1:{self.ports['mariadb']}/xiaoke?charset=utf8mb4"

    # ---- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.print_logs()
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is not None:
            self.print_logs()
        self.close()

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        if self.use_redis:
            self._add_redis()
        if self.database_mode == "mysql":
            self._add_mariadb()
        if self.serving_mode != "none":
            self._add_serving()
        self.ports["proxy_upstream"] = self.ports.get("serving") or free_port()
        if self.use_fault_proxy:
            self.proxy = FaultProxy(("127.0.0.1", self.ports["proxy_upstream"])).start()
        self._add_api()
        order = ["redis", "mariadb", "serving"]
        for name in order:
            if name in self.procs:
                self.procs[name].start(wait=False)
        for name in order:
            if name in self.procs:
                p = self.procs[name]
                if p.ready is not None:
                    wait_for(p.ready, p.ready_timeout_s, f"{name} ready", p)
        if "mariadb" in self.procs:
            self._create_database()
        self.migrate()
        self.procs["api"].start()

    def close(self) -> None:
        for name in ("api", "serving", "mariadb", "redis"):
            p = self.procs.get(name)
            if p is not None:
                with contextlib.suppress(Exception):
                    p.stop()
        if self.proxy is not None:
            self.proxy.stop()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.keep_workdir:
            print(f"[stack] kept {self.workdir}", file=sys.stderr)

    def print_logs(self, file: Any = None) -> None:
        out = file or sys.stderr
        for name, p in self.procs.items():
            print(f"----- {name} ({p.log_path}) -----\n{p.tail(self.log_tail_lines)}", file=out)

    # ---- control -------------------------------------------------------------------------------------
    def stop(self, name: str) -> None:
        self.procs[name].stop()

    def kill(self, name: str) -> None:
        self.procs[name].kill()

    def start_proc(self, name: str, wait: bool = True) -> None:
        self.procs[name].start(wait=wait)

    def restart(self, name: str, wait: bool = True) -> None:
        self.procs[name].restart(wait=wait)

    def rss(self) -> dict[str, int]:
        return {name: p.rss_bytes() for name, p in self.procs.items() if p.alive}

    def cpu_seconds(self) -> dict[str, float]:
        """{name: user + system CPU seconds so far} of every live process tree (differences give per-phase use)."""
        return {name: p.cpu_seconds() for name, p in self.procs.items() if p.alive}

    def api_ready(self) -> dict[str, Any]:
        return dict(httpx.get(self.api_url + "/readyz", timeout=3).json())

    def migrate(self) -> None:
        out = subprocess.run(
            [PY, "-m", "api", "migrate"],
            cwd=REPO,
            env=self._api_env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        (self.logs / "migrate.log").write_text(out.stdout + out.stderr, encoding="utf-8")
        if out.returncode != 0:
            raise StackError(f"api migrate failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Run one SQL statement against the stack's database (for counting stored rows)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                result = conn.execute(text(query))
                return [tuple(r) for r in result] if result.returns_rows else []
        finally:
            engine.dispose()

    def login(self) -> str:
        r = httpx.post(
            self.api_url + "/api/v1/admin/auth/login",
            json={"username": self.admin[0], "password": self.admin[1]},
            timeout=10,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    # ---- process definitions -------------------------------------------------------------------------
    def _add_redis(self) -> None:
        port = self.ports["redis"] = free_port()
        rdir = self.workdir / "redis"
        rdir.mkdir(exist_ok=True)
        argv = [
            shutil.which("redis-server") or "redis-server",
            "--port", str(port), "--bind", "127.0.0.1", "--dir", str(rdir),
            "--save", "", "--daemonize", "no", "--protected-mode", "yes",
            "--appendonly", "yes" if self.redis_persist else "no", "--appendfsync", "everysec",
        ]  # fmt: skip

        def ready() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        self.procs["redis"] = Proc("redis", argv, dict(os.environ), self.logs / "redis.log", ready=ready)

    def _add_mariadb(self) -> None:
        port = self.ports["mariadb"] = free_port()
        mdir = self.workdir / "mariadb"
        datadir, rundir = mdir / "data", mdir / "run"
        rundir.mkdir(parents=True, exist_ok=True)
        install = subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={datadir}", "--user=root", "--auth-root-authentication-method=socket",
                "--skip-test-db", "--skip-name-resolve",
            ],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        (self.logs / "mariadb-install.log").write_text(install.stdout + install.stderr, encoding="utf-8")
        if install.returncode != 0:
            raise StackError(f"mariadb-install-db failed:\n{install.stderr[-3000:]}")
        self.mariadb_socket = rundir / "mysqld.sock"
        argv = [
            shutil.which("mariadbd") or "/usr/sbin/mariadbd",
            "--no-defaults", f"--datadir={datadir}", "--user=root", f"--socket={self.mariadb_socket}",
            f"--pid-file={rundir / 'mysqld.pid'}", f"--port={port}", "--bind-address=127.0.0.1",
            "--skip-name-resolve", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M",
            "--max-connections=200", "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            f"--log-error={self.logs / 'mariadb-error.log'}",
        ]  # fmt: skip
        sock = str(self.mariadb_socket)

        def ready() -> bool:
            r = subprocess.run(
                ["mariadb-admin", f"--socket={sock}", "-uroot", "ping"], capture_output=True, timeout=5
            )
            return r.returncode == 0

        self.procs["mariadb"] = Proc(
            "mariadb", argv, dict(os.environ), self.logs / "mariadb.log", ready=ready, ready_timeout_s=90
        )

    def _create_database(self) -> None:
        pw = self.db_password
        sql = (
            "CREATE DATABASE IF NOT EXISTS xiaoke CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
            f"CREATE USER IF NOT EXISTS 'xiaoke'@'127.0.0.1' IDENTIFIED BY '{pw}';"
            "GRANT ALL PRIVILEGES ON xiaoke.* TO 'xiaoke'@'127.0.0.1'; FLUSH PRIVILEGES;"
        )
        r = subprocess.run(
            ["mariadb", f"--socket={self.mariadb_socket}", "-uroot", "-e", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if r.returncode != 0:
            raise StackError(f"creating the database failed: {r.stderr[-2000:]}")

    def _model_store(self) -> Path:
        if self.model_store_arg is not None:
            return self.model_store_arg
        real = Path(os.environ.get("XIAOKE_DATA_DIR") or REPO / "var") / "models"
        if all((real / kind / "LIVE").is_file() for kind in ("intent", "sentiment", "embedder")):
            src = real
        else:
            sys.path.insert(0, str(REPO / "tests"))
            from conftest import _cached_tiny_store  # tests/conftest.py: builds once, cached by hash

            src = _cached_tiny_store()
        dest = self.workdir / "models"
        # a private copy: the serving bootstrap writes FAQ index versions into the store
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns("indexes"))
        return dest

    def _add_serving(self) -> None:
        port = self.ports["serving"] = free_port()
        env = dict(os.environ)
        env["XIAOKE_DATA_DIR"] = str(self.data)
        if self.serving_mode == "fake":
            argv = [PY, "-m", "tests.stack.fake_serving", "--port", str(port)]
            env["PYTHONPATH"] = str(REPO)
            timeout = 60.0
        else:
            import yaml

            store = self._model_store()
            cfg = yaml.safe_load((REPO / "serving" / "config" / "cpu.yaml").read_text(encoding="utf-8"))
            cfg["http_options"]["port"] = port
            if self.serving_replicas:
                for dep in cfg["applications"][0]["deployments"]:
                    if dep.get("name") == "NluIngress":
                        dep.pop("autoscaling_config", None)
                        dep["num_replicas"] = self.serving_replicas
            cfg_path = self.workdir / "serving-cpu.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
            env.update(
                SERVING_CONFIG=str(cfg_path),
                SERVING_MODEL_STORE=str(store),
                SERVING_RAY_TEMP_DIR=str(Path(tempfile.gettempdir()) / f"xiaoke-ray-stack-{port}"),
                RAY_USAGE_STATS_ENABLED="0",
            )
            if self.serving_num_cpus:
                env["SERVING_NUM_CPUS"] = str(self.serving_num_cpus)
            argv = ["bash", str(REPO / "scripts" / "serve.sh"), "cpu"]
            timeout = 240.0

        def ready() -> bool:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200

        self.procs["serving"] = Proc(
            "serving", argv, env, self.logs / "serving.log", ready=ready, ready_timeout_s=timeout
        )

    def _api_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("API_")}
        env.update(
            XIAOKE_DATA_DIR=str(self.data),
            API_ENV="test",
            API_SECRET_KEY=self.secret_key,
            API_IDENTITY_SECRET=self.identity_secret,
            API_DATABASE_URL=self.database_url,
            API_SERVING_URL=self.serving_proxy_url,
            API_BOOTSTRAP_ADMIN_USERNAME=self.admin[0],
            API_BOOTSTRAP_ADMIN_PASSWORD=self.admin[1],
            API_WIDGET_DIST=str(REPO / "frontend" / "dist" / "widget"),
            API_CONSOLE_DIST=str(REPO / "frontend" / "dist" / "console"),
            API_LOG_LEVEL="INFO",
            PYTHONPATH=str(REPO),
        )
        if self.use_redis:
            env["API_REDIS_URL"] = self.redis_url
        env.update(self.api_env_extra)
        return env

    def _add_api(self) -> None:
        port = self.ports["api"] = free_port()
        argv = [PY, "-m", "api", "serve", "--host", "127.0.0.1", "--port", str(port)]
        if self.api_workers > 1:
            argv += ["--workers", str(self.api_workers)]

        def ready() -> bool:
            r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3)
            if r.status_code != 200:
                return False
            checks = r.json()["checks"]
            return bool(checks["database"]) and (self.serving_mode == "none" or bool(checks["serving"]))

        self.procs["api"] = Proc(
            "api", argv, self._api_env(), self.logs / "api.log", ready=ready, ready_timeout_s=90
        )
