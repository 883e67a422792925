"""Kubernetes secrets: keys of Secret xiaoke-secrets projected as files into each pod that reads them (mode 0440,
group = the pod's fsGroup) and read by each program from there, never through an environment variable or a
command-line argument (the rendered overlays, as `kubectl apply -k` sends them)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.stack.harness import free_port
from tests.unit.deploy.common import check_redis_started_with_hidden_password, one

SECRET_NAME = "xiaoke-secrets"
SECRET_PATH = re.compile(r"/run/secrets/[\w/.-]+")
API_PODS = (("Deployment", "xiaoke-api"), ("Job", "xiaoke-migrate"))
# The keys the API pods may read and a value for each (k8s/base/secret.example.yaml, with real-looking values).
VALUES = {
    "API_SECRET_KEY": "k" * 48,
    "API_DATABASE_URL": "mysql+pymysql://xiaoke:db-pass-7Hq@mysql:3306/xiaoke?charset=utf8mb4",
    "API_REDIS_URL": "redis://:redis-pass-9Zx@redis:6379/0",
    "API_ORDER_WEBHOOK_SECRET": "w" * 32,
    "API_IDENTITY_SECRET": "i" * 40,
    "API_BOOTSTRAP_ADMIN_PASSWORD": "first-admin-pass-1",
}
OPTIONAL = ("API_ORDER_WEBHOOK_SECRET", "API_IDENTITY_SECRET", "API_BOOTSTRAP_ADMIN_PASSWORD")


def kube_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of command, args and probe commands (third_party/forked/golang/expansion): `$$` is a
    literal `$`, `$(NAME)` the value of env var NAME, kept as written when there is no such variable."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            end = text.find(")", i + 2) if text[i + 1] == "(" else -1
            if end != -1:
                name = text[i + 2 : end]
                out.append(env.get(name, f"$({name})"))
                i = end + 1
                continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    template = (
        doc["spec"]["jobTemplate"]["spec"]["template"]
        if doc["kind"] == "CronJob"
        else doc["spec"]["template"]
    )
    spec: dict[str, Any] = template["spec"]
    return spec


def _workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob")]


def _projected(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """What the kubelet puts into `container` from Secret xiaoke-secrets: file path -> (key, optional)."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    files: dict[str, tuple[str, bool]] = {}
    for mount in container.get("volumeMounts") or []:
        volume = volumes.get(mount["name"], {})  # none: a StatefulSet's volumeClaimTemplates
        sources = [s["secret"] for s in (volume.get("projected") or {}).get("sources") or [] if "secret" in s]
        if "secret" in volume:
            sources.append({"name": volume["secret"]["secretName"], **volume["secret"]})
        for source in sources:
            assert source["name"] == SECRET_NAME
            assert source.get("items"), (
                f"{mount['name']}: every key of the Secret mounted, not the ones it reads"
            )
            for item in source["items"]:
                path = f"{mount['mountPath']}/{item['path']}"
                files[path] = (item["key"], bool(source.get("optional")))
    return files


def _texts(container: dict[str, Any]) -> list[str]:
    """Everything of a container that may name a secret file: env values, command, args, probe commands."""
    texts = [str(e.get("value", "")) for e in container.get("env") or []]
    texts += [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        texts += [str(a) for a in ((container.get(probe) or {}).get("exec") or {}).get("command") or []]
    return texts


def test_every_container_mounts_the_secret_files_it_reads(rendered: dict[str, Any]) -> None:
    """Each /run/secrets/... path a container names is a required item of a Secret volume mounted (read-only)
    there, readable by the pod's non-root user: files are root:<fsGroup> with mode 0440, so the pod needs an
    fsGroup its user is in (0400 would be root's alone). The kubelet refuses to start a pod missing a required
    key, as it did with secretKeyRef."""
    for overlay, docs in rendered.items():
        readers = 0
        for doc in _workloads(docs):
            pod = _pod_spec(doc)
            for container in (pod.get("initContainers") or []) + pod["containers"]:
                where = f"{overlay} {doc['kind']}/{doc['metadata']['name']} {container['name']}"
                files = _projected(pod, container)
                named = {p for text in _texts(container) for p in SECRET_PATH.findall(text)}
                assert named <= set(files), f"{where} reads {sorted(named - set(files))}, not mounted"
                assert all(not files[p][1] for p in named), f"{where}: a file it always reads is optional"
                if not files:
                    continue
                readers += 1
                for mount in container["volumeMounts"]:
                    if mount["mountPath"].startswith("/run/secrets"):
                        assert mount.get("readOnly") is True, where
                context = pod.get("securityContext") or {}
                assert context.get("runAsNonRoot") is True and context.get("fsGroup") is not None, where
                for volume in pod["volumes"]:
                    source = volume.get("secret") or volume.get("projected")
                    if source is not None:
                        assert source.get("defaultMode") == 0o440, f"{where}: volume {volume['name']}"
        assert readers == 6, f"{overlay}: api + wait-schema, migrate, mysql, mysql backup, redis"


@pytest.mark.parametrize("with_webhook", [False, True], ids=["minimal-secret", "webhook"])
def test_k8s_api_settings_load_from_the_secret_files(
    rendered: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_webhook: bool
) -> None:
    """Every API-image container (API, its wait-schema init container, the migration Job) with its rendered
    environment (ConfigMap xiaoke-api-config + env) and the files the kubelet would project: production settings
    load, the secrets come from the files. `minimal-secret`: a Secret without the optional keys (they were
    optional secretKeyRefs; the pods still start). `webhook`: the order webhook connected as
    k8s/base/kustomization.yaml says (keys in the Secret, API_*_FILE in the ConfigMap): every API-image pod
    validates those settings at start, the migration too, so each must find the files."""
    from api.settings import Settings

    secret = dict(VALUES) if with_webhook else {k: v for k, v in VALUES.items() if k not in OPTIONAL}
    for overlay, docs in rendered.items():
        for kind, name in API_PODS:
            doc = one(docs, kind, name)
            pod = _pod_spec(doc)
            for container in (pod.get("initContainers") or []) + pod["containers"]:
                where = f"{overlay} {kind}/{name} {container['name']}"
                (config_ref,) = [s["configMapRef"]["name"] for s in container["envFrom"]]
                env = dict(one(docs, "ConfigMap", config_ref)["data"])
                assert env.get("API_SEED_DEMO") == "false", "the demo shop's FAQ seeded into production"
                root = tmp_path / overlay / name / container["name"]
                root.mkdir(parents=True)
                host: dict[str, str] = {}
                for path, (key, optional) in _projected(pod, container).items():
                    if key in secret:
                        (root / key).write_text(
                            secret[key], encoding="utf-8"
                        )  # kubelet: the bytes, no newline
                        host[path] = str(root / key)
                    else:
                        assert optional, f"{where}: required key {key} missing"
                if with_webhook:
                    env |= {
                        "API_ORDER_LOOKUP": "webhook",
                        "API_ORDER_WEBHOOK_URL": "https://shop.example.com/xiaoke/orders",
                        "API_BOOTSTRAP_ADMIN_USERNAME": "admin",
                    }
                    for key in OPTIONAL:
                        env[f"{key}_FILE"] = f"/run/secrets/xiaoke/{key}"
                env |= {e["name"]: str(e["value"]) for e in container.get("env") or []}
                for key in [k for k in os.environ if k.startswith("API_")]:
                    monkeypatch.delenv(key)
                for key, value in env.items():
                    for path in SECRET_PATH.findall(value):
                        value = value.replace(path, host.get(path, path))
                    monkeypatch.setenv(key, value)
                s = Settings()
                assert s.env == "production", where
                assert s.secret_key.get_secret_value() == VALUES["API_SECRET_KEY"], where
                url = make_url(s.database_dsn)
                assert (url.username, url.password, url.host) == ("xiaoke", "db-pass-7Hq", "mysql"), where
                if container["name"] == "api":
                    assert s.redis_dsn == VALUES["API_REDIS_URL"], where
                if with_webhook:
                    assert s.order_webhook_secret is not None, where
                    assert s.order_webhook_secret.get_secret_value() == VALUES["API_ORDER_WEBHOOK_SECRET"]
                    assert s.identity_key == VALUES["API_IDENTITY_SECRET"], where
                    assert s.bootstrap_admin_password is not None, where
                else:
                    assert s.order_webhook_secret is None and s.identity_key is None, where


def _redis_container(rendered: dict[str, Any]) -> dict[str, Any]:
    pod = one(rendered["cpu"], "StatefulSet", "redis")["spec"]["template"]["spec"]
    container: dict[str, Any] = pod["containers"][0]
    return container


def test_k8s_redis_reads_its_password_from_the_secret_file_only(
    rendered: dict[str, Any], tmp_path: Path
) -> None:
    """The redis container's command, as the kubelet expands it, run here (the image's docker-entrypoint.sh as a
    plain exec, loopback port and data directory in tmp_path) with a password that a config line would break
    on (space, quote, backslash, `#`): the server requires exactly that password, which is in neither its
    command line nor its environment, and the container's probes authenticate with it."""

    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server not installed")
    container = _redis_container(rendered)
    env = {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}
    argv = [kube_expand(a, env) for a in container["command"] + (container.get("args") or [])]
    assert argv == container["command"], "the kubelet would change the script"
    assert argv[:2] == ["sh", "-ec"] and len(argv) == 3
    password = 'pa ss"wo\\rd#1 x'
    (tmp_path / "REDIS_PASSWORD").write_text(password, encoding="utf-8")
    shim = tmp_path / "bin" / "docker-entrypoint.sh"
    shim.parent.mkdir()
    shim.write_text('#!/bin/sh\nexec "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    port = free_port()
    script = argv[2].replace("/run/secrets/xiaoke/", f"{tmp_path}/")
    script = script.replace(
        "redis-server ", f"redis-server --port {port} --bind 127.0.0.1 --dir {tmp_path} ", 1
    )
    path_env = {"PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    server = subprocess.Popen(
        ["sh", "-ec", script], env=path_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        check_redis_started_with_hidden_password(
            server, port, password, {"appendonly": "yes", "maxmemory-policy": "noeviction"}
        )
        for probe in ("readinessProbe", "livenessProbe"):
            command = [kube_expand(a, env) for a in container[probe]["exec"]["command"]]
            command[-1] = command[-1].replace("/run/secrets/xiaoke/", f"{tmp_path}/")
            command[-1] = command[-1].replace("redis-cli ", f"redis-cli -p {port} ", 1)
            assert subprocess.run(command, env=path_env, timeout=10, check=False).returncode == 0, probe
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_kube_expand_follows_kubernetes() -> None:
    env = {"A": "1"}
    assert kube_expand("$(A) $$(A) $(B) $(cat /x) $pass $", env) == "1 $(A) $(B) $(cat /x) $pass $"
