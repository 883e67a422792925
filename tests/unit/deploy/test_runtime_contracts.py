"""Deployment artifacts vs what the running code does (things the schema validators cannot see).

- an HPA-managed Deployment must not pin spec.replicas (every `kubectl apply -k` would scale it back down);
- Serve autoscaling must be able to scale up under the load the API can generate (the API keeps at most
  API_SERVING_BATCHES_IN_FLIGHT /v1/nlu requests outstanding per pod, so a target_ongoing_requests above
  what all API pods together can ever have outstanding freezes every deployment at min_replicas);
- Serve's proxy must not cut index builds the API waits up to `admin_timeout_s` for;
- the API sits behind proxies (ingress-nginx / the web nginx) and must read the visitor's address from
  X-Forwarded-For, or every visitor shares one per-IP rate-limit bucket;
- the API's graceful shutdown (event streams closed, writer flushed) fits the pod's grace period, and compose's
  stop_grace_period;
- the API's readiness probe outlasts /readyz when MySQL and serving hang (degraded mode, not an outage);
- a new API pod waits for the migration Job's schema before it serves;
- the compose web tier (nginx resolves `api` once) restarts when compose recreates the API;
- nginx runs a fixed number of workers that fits the web pod (not one per node CPU);
- every Ray node's object store fits its /dev/shm (Ray's own sizing code), in Kubernetes and compose;
- docker compose volumes mounted into the non-root serving image must be writable by its user;
- runbook commands name the namespace and can run as written.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.common import ROOT, dockerfile_stage, one, vd


def _api_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    cms = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("xiaoke-api-config")
    ]
    assert len(cms) == 1
    return dict(cms[0]["data"])


def _serve_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    cfg: dict[str, Any] = yaml.safe_load(one(docs, "RayService")["spec"]["serveConfigV2"])
    return cfg


# ------------------------------------------------------------------------------------------ rollouts
@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_hpa_managed_deployments_do_not_pin_replicas(rendered: dict[str, Any], overlay: str) -> None:
    docs = rendered[overlay]
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert hpas
    for hpa in hpas:
        ref = hpa["spec"]["scaleTargetRef"]
        target = one(docs, ref["kind"], ref["name"])
        assert "replicas" not in target["spec"], (
            f"{ref['kind']}/{ref['name']} is scaled by HPA {hpa['metadata']['name']} but pins "
            f"spec.replicas={target['spec']['replicas']}: every `kubectl apply -k` scales it back to that"
        )
        assert hpa["spec"]["minReplicas"] >= 2


# ------------------------------------------------------------------------------- Serve autoscaling
def _max_api_requests_in_flight(docs: list[dict[str, Any]]) -> int:
    from api.settings import Settings

    hpa = one(docs, "HorizontalPodAutoscaler", "xiaoke-api")
    env = _api_env(docs)
    default = Settings.model_fields["serving_batches_in_flight"].default
    per_pod = int(env.get("API_SERVING_BATCHES_IN_FLIGHT", default))
    return int(hpa["spec"]["maxReplicas"]) * per_pod


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_serve_autoscaling_can_scale_up_under_api_load(rendered: dict[str, Any], overlay: str) -> None:
    """ceil(max outstanding requests / target) must exceed min_replicas, else Serve never adds a replica.

    In the split (GPU) topology every NluIngress request makes one call per model deployment and one to the
    Retriever, so each of them sees at most as many outstanding requests as the ingress."""
    docs = rendered[overlay]
    ceiling = _max_api_requests_in_flight(docs)
    stuck = []
    for app in _serve_config(docs)["applications"]:
        for dep in app["deployments"]:
            auto = dep.get("autoscaling_config")
            if not auto:
                continue
            reachable = math.ceil(ceiling / auto["target_ongoing_requests"])
            if reachable <= auto["min_replicas"]:
                stuck.append(
                    f"{dep['name']}: target_ongoing_requests {auto['target_ongoing_requests']} with at most "
                    f"{ceiling} requests outstanding -> {reachable} replica(s) <= min_replicas {auto['min_replicas']}"
                )
    assert stuck == [], "\n".join(stuck)


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_serve_proxy_timeout_covers_index_builds(rendered: dict[str, Any], overlay: str) -> None:
    from api.inference import InferenceConfig

    timeout = (_serve_config(rendered[overlay]).get("http_options") or {}).get("request_timeout_s")
    admin = InferenceConfig(base_url="http://x").admin_timeout_s
    assert timeout is None or timeout >= admin, (
        f"Serve cuts requests after {timeout} s but the API waits up to {admin} s for an index build"
    )


PUBLISH = "/api/v1/admin/index/publish"


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_ingress_does_not_cut_index_publishes(rendered: dict[str, Any], overlay: str) -> None:
    """ingress-nginx applies an Ingress's timeouts to its paths; the longest matching path wins across them."""
    from api.inference import InferenceConfig

    admin = InferenceConfig(base_url="http://x").admin_timeout_s
    best: tuple[int, dict[str, Any]] | None = None
    for ing in (d for d in rendered[overlay] if d["kind"] == "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                if path.get("pathType") == "Prefix" and PUBLISH.startswith(path["path"].rstrip("/")):
                    if best is None or len(path["path"]) > best[0]:
                        best = (len(path["path"]), ing)
    assert best is not None, f"no Ingress routes {PUBLISH}"
    read = float(
        best[1]["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-read-timeout", 60)
    )
    assert read >= admin, (
        f"Ingress {best[1]['metadata']['name']} cuts {PUBLISH} after {read} s (API waits {admin} s)"
    )


def test_web_nginx_does_not_cut_index_publishes() -> None:
    """deploy/nginx.conf (compose and the web tier): the location that serves a publish allows the build time."""
    from api.inference import InferenceConfig

    admin = InferenceConfig(base_url="http://x").admin_timeout_s
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    hits = []
    for m in re.finditer(r"location\s+~\s+(\S+)\s*\{([^{}]*)\}", conf):
        if re.search(m.group(1), PUBLISH):
            t = re.search(r"proxy_read_timeout\s+(\d+)s?;", m.group(2))
            hits.append(int(t.group(1)) if t else 60)
    assert hits, f"no regex location serves {PUBLISH} (the /api/ prefix location reads for 30 s)"
    assert min(hits) >= admin, f"nginx cuts {PUBLISH} after {min(hits)} s (API waits {admin} s)"


# ------------------------------------------------------------------------------ client addresses
# Private, CGNAT and loopback ranges: pod networks and docker bridge networks live there; visitors' public
# addresses do not (and a private visitor address is harmless: it is still that visitor's own address).
PROXY_SAMPLES = ("10.42.3.7", "172.18.0.5", "192.168.49.2", "100.64.12.9", "127.0.0.1")


def _serve_kwargs(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `python -m api <argv>` hands to uvicorn.run (the real CLI parser, uvicorn stubbed)."""
    import uvicorn

    import api.__main__ as cli

    captured: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: captured.update(kw))
    assert cli.main(argv) == 0
    return captured


def _assert_resolves_visitor(kwargs: dict[str, Any], where: str) -> None:
    from uvicorn.middleware.proxy_headers import _TrustedHosts

    assert kwargs["proxy_headers"] is True, f"{where}: API started without --proxy-headers"
    trusted = _TrustedHosts(kwargs["forwarded_allow_ips"])
    assert not trusted.always_trust, f"{where}: trusting every peer lets visitors spoof X-Forwarded-For"
    for proxy in PROXY_SAMPLES:
        assert proxy in trusted, f"{where}: proxy address {proxy} not trusted"
    visitor = "198.51.100.23"
    assert visitor not in trusted
    assert trusted.get_trusted_client_address(f"{visitor}")[0] == visitor
    # a visitor-supplied X-Forwarded-For is left of the address the proxy appended: it must not win
    assert trusted.get_trusted_client_address(f"203.0.113.66, {visitor}, 10.42.0.3")[0] == visitor


def test_k8s_api_reads_the_visitor_address_from_the_proxies(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for overlay, docs in rendered.items():
        container = one(docs, "Deployment", "xiaoke-api")["spec"]["template"]["spec"]["containers"][0]
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        _assert_resolves_visitor(_serve_kwargs(argv, monkeypatch), f"k8s {overlay} xiaoke-api")


def test_compose_api_reads_the_visitor_address_from_the_web_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    argv = list(compose["services"]["api"]["command"])
    _assert_resolves_visitor(_serve_kwargs(argv, monkeypatch), "compose api")


def test_k8s_api_shutdown_fits_the_pod_grace_period(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Event streams never end by themselves: without a graceful-shutdown timeout uvicorn waits for them until
    the kubelet's SIGKILL, and the app's own shutdown (flushing the durable writer) never runs."""
    for overlay, docs in rendered.items():
        pod = one(docs, "Deployment", "xiaoke-api")["spec"]["template"]["spec"]
        container = pod["containers"][0]
        argv = list(container.get("command") or []) + list(container.get("args") or [])
        graceful = _serve_kwargs(argv, monkeypatch).get("timeout_graceful_shutdown")
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = pod.get("terminationGracePeriodSeconds", 30)
        assert graceful is not None, f"{overlay}: uvicorn has no graceful-shutdown timeout"
        # the writer's flush and the process exit need a few seconds of the grace period too
        assert pre_stop + graceful + 5 <= grace, (
            f"{overlay}: preStop {pre_stop} + {graceful} s > grace {grace} s"
        )


def _seconds(duration: str | int | float) -> float:
    """A compose duration ("25s", "1m30s", "1m", 40) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a compose duration: {duration!r}"
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    return sum(float(n) * scale[u] for n, u in parts)


def test_compose_api_shutdown_fits_the_stop_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """`docker compose up -d` (a new image) or `stop` sends SIGTERM, then SIGKILL after stop_grace_period (10 s
    when unset). uvicorn gives open event streams `timeout_graceful_shutdown` seconds before the app's own
    shutdown (the durable writer's flush) runs: the grace period must cover both, as in Kubernetes."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    svc = compose["services"]["api"]
    graceful = _serve_kwargs(list(svc["command"]), monkeypatch).get("timeout_graceful_shutdown")
    assert graceful is not None, "compose api: uvicorn has no graceful-shutdown timeout"
    grace = _seconds(svc.get("stop_grace_period", "10s"))
    assert graceful + 5 <= grace, (
        f"compose api: stop_grace_period {grace:g} s < uvicorn graceful shutdown {graceful} s + 5 s: "
        "docker kills the API before its shutdown flushes the writer"
    )


def test_k8s_api_pods_wait_for_the_schema_before_serving(
    rendered: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The migration Job and the API rollout go out in one `kubectl apply -k`: a new pod's init container holds
    it back until the schema is at its head (`python -m api migrate --wait`, through the real CLI parser)."""
    import api.__main__ as cli
    import api.db.migrate as migrate

    waited: list[float] = []

    def wait_for_schema(engine: Any, timeout_s: float) -> bool:
        waited.append(timeout_s)
        return True

    monkeypatch.setattr(migrate, "wait_for_schema", wait_for_schema)
    for overlay, docs in rendered.items():
        pod = one(docs, "Deployment", "xiaoke-api")["spec"]["template"]["spec"]
        inits = pod.get("initContainers") or []
        assert len(inits) == 1, f"{overlay}: the API pod has no schema-wait init container"
        assert inits[0]["image"] == pod["containers"][0]["image"], "the wait must know the new version's head"
        env = {e["name"] for e in inits[0].get("env", [])}
        assert {"API_DATABASE_URL_FILE", "API_SECRET_KEY_FILE"} <= env  # secret files: test_k8s_secrets.py
        waited.clear()
        assert cli.main(list(inits[0].get("command") or []) + list(inits[0]["args"])) == 0
        assert waited and 0 < waited[0] <= 900, f"{overlay}: init container does not wait for the schema"


def test_compose_web_follows_a_recreated_api() -> None:
    """deploy/nginx.conf names the API by host name in a static `upstream` (no `resolve`): nginx looks `api` up
    once, at start. `docker compose up -d` with a new API image recreates the api container, which gets a new
    address on the network; a web container left running keeps proxying every /api request to the old one
    (502) until it restarts. `depends_on.api.restart: true` makes compose restart web whenever it recreates or
    restarts api. (In Kubernetes `api` is a Service: its ClusterIP never changes.)"""
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    upstream = re.search(r"upstream\s+api\s*\{([^}]*)\}", conf)
    assert upstream is not None, "deploy/nginx.conf has no upstream api"
    servers = re.findall(r"^\s*server\s+([A-Za-z][\w.-]*):\d+([^;]*);", upstream.group(1), re.M)
    if not servers or all("resolve" in opts.split() for _, opts in servers):
        return  # addresses only, or re-resolved at run time
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    dep = (compose["services"]["web"].get("depends_on") or {}).get("api")
    assert isinstance(dep, dict) and dep.get("restart") is True, (
        "compose web: nginx resolves `api` once at start; without depends_on.api.restart: true a recreated api "
        "container (new address) leaves web answering 502 on /api"
    )


def test_web_nginx_workers_fit_the_pod(rendered: dict[str, Any]) -> None:
    """`worker_processes auto` starts one nginx worker per CPU of the node (nginx reads the CPUs it may run on,
    not the pod's CPU limit): 64 workers of 4096 connections each on a 64-core node, in a pod limited to half a
    CPU and 256Mi, which OOM-kills or throttles it. The worker count must be fixed and fit the CPU limit."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    match = re.search(r"^\s*worker_processes\s+(\S+);", conf, re.M)
    workers = match.group(1) if match else "1"
    assert workers.isdigit(), (
        f"deploy/nginx.conf: worker_processes {workers} (one per node CPU, not per pod CPU)"
    )
    for overlay, docs in rendered.items():
        container = one(docs, "Deployment", "xiaoke-web")["spec"]["template"]["spec"]["containers"][0]
        cpu_limit = vd._quantity(container["resources"]["limits"]["cpu"])
        assert int(workers) <= max(2, math.ceil(cpu_limit)), (
            f"{overlay}: {workers} nginx workers for a CPU limit of {cpu_limit:g}"
        )


# ---------------------------------------------------------------------------- compose volumes
@pytest.mark.parametrize("service", ["serving", "serving-gpu"])
def test_compose_volumes_of_the_serving_image_are_writable_by_its_user(service: str) -> None:
    """A named volume takes the owner of the image directory it is mounted on (Docker copies it on first
    use); a mount point the image lacks is created root-owned, and the non-root server cannot write there
    (FAQ index versions go to /models/indexes)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    svc = compose["services"][service]
    build = svc["build"]
    steps = dockerfile_stage(ROOT / build["dockerfile"], build["target"])
    users = [s.split()[1] for s in steps if s.split()[0].upper() == "USER"]
    assert users, f"{service}: image runs as root"
    uid = users[-1].split(":")[0]
    user_at = max(i for i, s in enumerate(steps) if s.split()[0].upper() == "USER")
    commands = [
        cmd.split()
        for step in steps[:user_at]
        if step.split()[0].upper() == "RUN"
        for cmd in re.split(r"&&|;", step.split(None, 1)[1])
    ]
    created = {a for c in commands if c[:2] == ["mkdir", "-p"] for a in c[2:]}
    owned = {a for c in commands if c[:2] == ["chown", f"{uid}:{uid}"] for a in c[2:]}
    for volume in svc["volumes"]:
        target = volume.split(":")[1]
        exists = any(d == target or d.startswith(target + "/") for d in created)
        assert exists and target in owned, (
            f"{service}: {target} is not created and chowned to {uid} in the image"
        )


# ----------------------------------------------------------------------------------------- runbook
RUNBOOK = ROOT / "docs" / "operations.md"
NAMESPACED = ("exec", "logs", "rollout", "get", "wait", "delete", "cp", "scale", "describe", "top")


def _kubectl_commands() -> list[str]:
    text = RUNBOOK.read_text(encoding="utf-8")
    spans = re.findall(r"`([^`\n]*kubectl [^`\n]*)`", text)
    blocks = re.findall(r"```\n(.*?)```", text, re.S)
    lines = [ln for b in blocks for ln in b.replace("\\\n", " ").splitlines() if "kubectl " in ln]
    return spans + lines


def test_runbook_kubectl_commands_name_the_namespace() -> None:
    missing = []
    for cmd in _kubectl_commands():
        for part in re.split(r"\|", cmd):
            m = re.search(r"kubectl\s+(\S+)", part)
            if m and m.group(1) in NAMESPACED and not re.search(r"(-n|--namespace)[ =]xiaoke", part):
                missing.append(part.strip())
    assert missing == [], "kubectl commands without -n xiaoke:\n" + "\n".join(missing)


def test_runbook_create_admin_command_runs_as_written() -> None:
    """`create-admin` needs a username and reads the password from a TTY (or --password-stdin)."""
    cmds = [c for c in _kubectl_commands() if "create-admin" in c]
    assert cmds
    for cmd in cmds:
        assert "--username" in cmd, cmd
        assert re.search(r"exec\s+(-it|-ti|-i -t|-t -i)\s", cmd) or "--password-stdin" in cmd, cmd


# ------------------------------------------------------------------------------------------ probes
async def _silent_server() -> tuple[Any, int, list[Any]]:
    """A loopback TCP server that accepts and never answers: a hung MySQL / inference server. Returns the
    server, its port and the accepted connections (close them to let a blocked client go)."""
    import asyncio

    accepted: list[Any] = []

    async def hold(reader: Any, writer: Any) -> None:
        accepted.append(writer)
        await reader.read()  # until the client gives up and closes, or the test closes the connection

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], accepted


async def _readyz_seconds_with_hung_dependencies() -> float:
    """Wall time of the real GET /readyz while MySQL and the inference server accept connections and never
    answer (a slow or partitioned database, a wedged Ray proxy), Redis healthy. The API's documented behaviour
    there is 200 with database/serving false (degraded mode), not a failed readiness probe."""
    import asyncio
    import time
    from types import SimpleNamespace

    import httpx

    from api.db.engine import make_engine
    from api.inference import InferenceClient, InferenceConfig
    from api.main import create_app
    from api.services import Services
    from api.settings import Settings

    db_server, db_port, db_conns = await _silent_server()
    nlu_server, nlu_port, nlu_conns = await _silent_server()
    engine = make_engine(f"mysql+pymysql://x:y@127.0.0.1:{db_port}/x")
    inference = InferenceClient(InferenceConfig(base_url=f"http://127.0.0.1:{nlu_port}"))

    async def ping() -> bool:
        return True

    async def pending() -> int:
        return 0

    holder = SimpleNamespace(engine=engine)
    services = SimpleNamespace(
        sessions=SimpleNamespace(ping=ping),
        db_ready=lambda: Services.db_ready(holder),  # type: ignore[arg-type]
        inference=inference,
        journal=SimpleNamespace(pending=pending),
        writer=SimpleNamespace(healthy=True),
    )
    app = create_app(Settings(env="development"))
    app.state.services = services
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            start = time.perf_counter()
            resp = await client.get("/readyz")
            elapsed = time.perf_counter() - start
        assert resp.status_code == 200, resp.text  # Redis up: ready, degraded
        assert resp.json()["checks"]["database"] is False and resp.json()["checks"]["serving"] is False
        return elapsed
    finally:
        await inference.aclose()
        for writer in db_conns + nlu_conns:  # the database ping's thread is still blocked in the handshake
            writer.close()
        for server in (db_server, nlu_server):
            server.close()
            await server.wait_closed()
        await asyncio.sleep(0.05)  # the connection handlers see EOF and end
        engine.dispose()


async def test_k8s_api_readiness_probe_outlasts_readyz_with_hung_dependencies(
    rendered: dict[str, Any],
) -> None:
    """/readyz waits for its dependency checks (database ping up to 2 s, inference server up to 1 s). A probe
    timeout at or under that fails every API pod's readiness the moment MySQL turns slow or unreachable, and the
    Service loses all endpoints: a full outage instead of the degraded mode (writes journaled) the API is built
    for. The probe must outlast the handler's worst case with a second to spare (a busy, throttled pod)."""
    elapsed = await _readyz_seconds_with_hung_dependencies()
    for overlay, docs in rendered.items():
        container = one(docs, "Deployment", "xiaoke-api")["spec"]["template"]["spec"]["containers"][0]
        probe = container["readinessProbe"]
        assert probe["httpGet"]["path"] == "/readyz"
        timeout = probe.get("timeoutSeconds", 1)
        assert timeout >= elapsed + 1.0, (
            f"{overlay}: readinessProbe.timeoutSeconds {timeout} s, but /readyz takes {elapsed:.2f} s when MySQL "
            "and serving hang: every API pod turns NotReady together"
        )


# ------------------------------------------------------------------------------------- Ray object store
def _ray_plasma_directory(
    monkeypatch: pytest.MonkeyPatch,
    tmp: Path,
    memory: int,
    shm: int,
    store: int | None,
    cap: int | None = None,
) -> str:
    """Where Ray 2.60 (the pinned version's own code) puts a node's object store, for a container with `memory`
    bytes and a /dev/shm of `shm` bytes: `store` is rayStartParams object-store-memory (None: Ray's default),
    `cap` the RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES environment variable (None: unset)."""
    ray_utils = pytest.importorskip("ray._private.utils")
    import ray._common.utils as common_utils
    import ray._private.ray_constants as ray_constants
    import ray._private.services as services

    monkeypatch.setattr(ray_utils, "get_shared_memory_bytes", lambda: shm)
    monkeypatch.setattr(common_utils, "get_system_memory", lambda: memory)
    if cap is not None:
        monkeypatch.setattr(ray_constants, "DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES", cap)
    # `ray start` sees the limit minus what the container already uses (~150 MB: the CLI itself)
    size = store if store is not None else ray_utils.resolve_object_store_memory(memory - 150 * 2**20)
    plasma, _, _ = services.determine_plasma_store_config(size, str(tmp))
    return str(plasma)


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_ray_object_store_lives_in_shared_memory_on_every_pod(
    rendered: dict[str, Any], overlay: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each Ray pod mounts a memory-backed /dev/shm with a sizeLimit; an object store larger than that makes
    Ray (silently, one warning line) keep the object store in /tmp, the container's disk layer."""
    cluster = one(rendered[overlay], "RayService")["spec"]["rayClusterConfig"]
    groups = [("head", cluster["headGroupSpec"])] + [(g["groupName"], g) for g in cluster["workerGroupSpecs"]]
    for name, group in groups:
        template = group["template"]
        container = template["spec"]["containers"][0]
        memory = vd._bytes(container["resources"]["limits"]["memory"])
        shm = vd._shm_size(template)
        assert memory and shm, f"{overlay} {name}: memory limit / /dev/shm sizeLimit missing"
        explicit = group.get("rayStartParams", {}).get("object-store-memory")
        plasma = _ray_plasma_directory(
            monkeypatch, tmp_path, memory, shm, int(explicit) if explicit is not None else None
        )
        assert plasma == "/dev/shm", (
            f"{overlay} {name}: Ray puts the object store in {plasma} (object-store-memory {explicit!r}, "
            f"/dev/shm {shm / 2**30:g} GiB, memory limit {memory / 2**30:g} GiB)"
        )


@pytest.mark.parametrize("service", ["serving", "serving-gpu"])
def test_compose_ray_object_store_lives_in_shared_memory(
    service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Compose sets no memory limit: Ray sizes the store from the host's RAM (here a 64 GiB host)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    svc = compose["services"][service]
    shm = vd._bytes(svc.get("shm_size")) or 64 * 2**20
    cap = svc.get("environment", {}).get("RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES")
    plasma = _ray_plasma_directory(monkeypatch, tmp_path, 64 * 2**30, shm, None, int(cap) if cap else None)
    assert plasma == "/dev/shm", f"compose {service}: Ray puts the object store in {plasma} on a 64 GiB host"
    import ray._private.ray_constants as ray_constants

    source = Path(ray_constants.__file__).read_text(encoding="utf-8")
    assert '"RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES"' in source, "Ray no longer reads that variable"
