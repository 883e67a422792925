"""Every deployment validator fails on its broken fixture and passes on the real artifacts."""

from __future__ import annotations

import copy
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.deploy.common import ROOT, load_script, one, vd

BROKEN = ROOT / "deploy" / "fixtures" / "broken"


entrypoint = load_script("serving_entrypoint", ROOT / "deploy" / "serving_entrypoint.py")

needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
needs_nginx = pytest.mark.skipif(
    shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin") is None,
    reason="nginx not installed",
)


def _joined(findings: list[str]) -> str:
    assert findings, "validator reported nothing on a broken fixture"
    return "\n".join(findings)


# ------------------------------------------------------------------------------------ broken fixtures
def test_hadolint_fails_on_broken_dockerfile() -> None:
    text = _joined(vd.check_hadolint([BROKEN / "Dockerfile.broken"]))
    assert "DL3007" in text  # FROM ...:latest
    assert "DL3003" in text  # cd inside RUN
    assert "DL3014" in text  # apt-get install without -y


def test_copy_sources_fail_on_missing_and_ignored_paths() -> None:
    findings = vd.check_copy_sources(BROKEN / "Dockerfile.copy.broken", ROOT)
    text = _joined(findings)
    assert "Dockerfile.copy.broken:4: COPY source requirements-that-do-not-exist.txt does not exist" in text
    assert "Dockerfile.copy.broken:5: COPY source tests/ is excluded by .dockerignore" in text
    assert "Dockerfile.copy.broken:9: no COPY source matched" in text
    assert not any(":6:" in f for f in findings)  # the multi-line COPY of api/ is fine


def test_real_dockerfiles_copy_only_existing_context_files() -> None:
    for dockerfile in sorted(ROOT.glob("Dockerfile*")):
        assert vd.check_copy_sources(dockerfile, ROOT) == [], dockerfile.name


def test_dependency_layers_fail_on_sources_copied_before_the_install() -> None:
    findings = vd.check_dependency_layers(BROKEN / "Dockerfile.layers.broken")
    text = _joined(findings)
    assert "Dockerfile.layers.broken:5: COPY api/ before the dependency install at line 7" in text
    assert len(findings) == 1  # metadata (pyproject.toml, README) may come first; the second stage is fine
    assert vd.check_hadolint([BROKEN / "Dockerfile.layers.broken"]) == []  # lint alone does not see it


def test_real_dockerfiles_install_dependencies_before_copying_sources() -> None:
    for dockerfile in sorted(ROOT.glob("Dockerfile*")):
        assert vd.check_dependency_layers(dockerfile) == [], dockerfile.name


def test_compose_schema_fails_on_broken_compose() -> None:
    text = _joined(vd.check_compose(BROKEN / "docker-compose.broken.yml"))
    assert "docker-compose.broken.yml" in text or "service_ready" in text or "restart_policy" in text


@needs_kubectl
def test_kustomize_fails_on_missing_resource() -> None:
    docs, findings = vd.render_kustomize(BROKEN / "kustomize-missing-resource")
    assert docs == []
    assert "deployment-that-does-not-exist.yaml" in _joined(findings)


def test_kubernetes_schemas_fail_on_invalid_objects() -> None:
    text = _joined(vd.check_kubernetes(vd.load_yaml_docs(BROKEN / "k8s-invalid.yaml")))
    assert "Deployment/broken" in text and "replicas" in text
    assert "Pod/broken-pod" in text and "healthcheck" in text  # unknown container field: strict mode
    assert "Service/broken" in text


def test_custom_resource_without_schema_is_a_finding() -> None:
    text = _joined(vd.check_kubernetes(vd.load_yaml_docs(BROKEN / "custom-resource-unknown.yaml")))
    assert "no schema" in text and "Certificate" in text


def test_rayservice_crd_schema_fails_on_broken_rayservice() -> None:
    text = _joined(vd.check_custom_resources(vd.load_yaml_docs(BROKEN / "rayservice.broken.yaml")))
    assert "enableInTreeAutoscalling" in text
    assert "groupName" in text
    assert "rayStartParams" in text
    assert "gpus" in text  # pod template validated as a Kubernetes PodTemplateSpec


def test_serve_config_checks_fail_on_broken_serve_config() -> None:
    (doc,) = vd.load_yaml_docs(BROKEN / "rayservice-serveconfig.broken.yaml")
    text = _joined(vd.check_serve_config(doc, ray_version="2.60.0"))
    for needle in (
        "rayVersion",
        "enableInTreeAutoscaling",
        "import_path",
        "args.device",
        "Reranker",
        "topology needs settings for ['NluIngress']",
        "min_replicas",
        "target_ongoing_requests",
        "max_ongoing_requests (5) < user_config.max_batch_size (128)",
        "user_config.max_batch_size must be an integer >= 64",
        "nvidia.com/gpu",
        "port",
    ):
        assert needle in text, needle


def test_serve_schema_check_fails_on_broken_serve_config() -> None:
    pytest.importorskip("ray.serve.schema")
    (doc,) = vd.load_yaml_docs(BROKEN / "rayservice-serveconfig.broken.yaml")
    text = _joined(vd.check_serve_schema(doc))
    assert "args (ServingArgs): device" in text  # "tpu" is not a Device
    assert "SentimentClassifier.user_config (ModelUserConfig): max_batch_size" in text  # 16 < 64


def test_serve_config_drift_check_fails_on_drifted_serving_config(rendered: dict[str, Any]) -> None:
    rayservice = one(rendered["cpu"], "RayService")
    text = _joined(vd.check_serving_config_file(rayservice, BROKEN / "serve-config-drift.yaml"))
    assert "args.device 'cpu' != 'auto'" in text
    assert "Retriever" in text
    assert "models.intent.batch_size" in text and "models.intent.max_batch_size" in text


def test_object_store_check_fails_when_the_store_does_not_fit_dev_shm(rendered: dict[str, Any]) -> None:
    doc = copy.deepcopy(one(rendered["cpu"], "RayService"))
    cluster = doc["spec"]["rayClusterConfig"]
    del cluster["headGroupSpec"]["rayStartParams"]["object-store-memory"]  # Ray's default: 30 % of 4Gi
    cluster["workerGroupSpecs"][0]["rayStartParams"]["object-store-memory"] = "4294967296"  # 4 GiB > 2Gi shm
    text = _joined(vd.check_serve_config(doc, ray_version="2.60.0"))
    assert (
        "head: Ray object store (Ray's default, 30 % of the 4 GiB memory limit) does not fit /dev/shm" in text
    )
    assert (
        "cpu-workers: Ray object store (object-store-memory 4294967296) does not fit /dev/shm (2 GiB)" in text
    )
    for overlay in ("cpu", "gpu"):
        cfg = one(rendered[overlay], "RayService")["spec"]["rayClusterConfig"]
        assert vd._object_store_findings("RayService/serving", cfg) == []


def test_compose_object_store_check_fails_without_a_cap(tmp_path: Path) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    del compose["services"]["serving"]["environment"]["RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES"]
    compose["services"]["serving-gpu"]["shm_size"] = "512mb"
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(yaml.safe_dump(compose), encoding="utf-8")
    text = _joined(vd.check_compose_ray_shm(broken))
    assert (
        "service serving: Ray object store up to 9.31 GiB (RAY_DEFAULT_OBJECT_STORE_MAX_MEMORY_BYTES unset)"
        in text
    )
    assert "service serving-gpu: Ray object store up to 1 GiB" in text and "shm_size 0.5 GiB" in text
    assert vd.check_compose_ray_shm(ROOT / "docker-compose.yml") == []


def test_compose_secrets_check_fails_on_secrets_in_environment_and_argv() -> None:
    """The fixture is the secret handling of docker-compose.yml before secrets became files: every way a secret
    reached `docker inspect`, /proc/<pid>/environ or `ps` is a finding; the real compose file has none."""
    fixture = BROKEN / "docker-compose.secrets.broken.yml"
    assert vd.check_compose(fixture) == []  # the schema alone accepts all of it
    text = _joined(vd.check_compose_secrets(fixture))
    for needle in (
        "service mysql: environment MYSQL_ROOT_PASSWORD: a secret as an environment variable",
        "service mysql: environment MYSQL_PASSWORD references MYSQL_PASSWORD",
        "service mysql: healthcheck references MYSQL_ROOT_PASSWORD",
        "service redis: command: --requirepass with a value on the command line",
        "service redis: command references REDIS_PASSWORD",
        "service redis: environment REDISCLI_AUTH: a secret as an environment variable",
        "service api: environment API_DATABASE_URL references MYSQL_PASSWORD",
        "service api: environment API_REDIS_URL: a URL with a password",
        "service api: environment API_SECRET_KEY: a secret as an environment variable",
        "service api: environment API_ORDER_WEBHOOK_SECRET: a secret as an environment variable",
        "service worker: env_file",
        "service worker: command: --password with a value on the command line",
        "service worker: command: a URL with a password",
    ):
        assert needle in text, needle
    assert vd.check_compose_secrets(ROOT / "docker-compose.yml") == []


def test_compose_secrets_check_allows_file_variables_and_shell_locals(tmp_path: Path) -> None:
    compose = {
        "services": {
            "api": {
                "image": "x",
                "environment": [
                    "API_SECRET_KEY_FILE=/run/secrets/api_secret_key",
                    "API_DATABASE_URL=mysql://u@db/x",
                ],
                "command": [
                    "sh",
                    "-c",
                    'pass="$$(cat /run/secrets/p)"; exec app --keepalive 5 - <<EOF\nx $$pass\nEOF',
                ],
            }
        }
    }
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(compose), encoding="utf-8")
    assert vd.check_compose_secrets(path) == []
    compose["services"]["api"]["environment"].append("API_BOOTSTRAP_ADMIN_PASSWORD=x")
    path.write_text(yaml.safe_dump(compose), encoding="utf-8")
    assert "API_BOOTSTRAP_ADMIN_PASSWORD: a secret as an environment variable" in _joined(
        vd.check_compose_secrets(path)
    )


def test_k8s_secrets_check_fails_on_secrets_in_environment_and_argv(rendered: dict[str, Any]) -> None:
    """The fixture is the secret handling of k8s/base before secrets became files of a Secret volume (secretKeyRef
    env, `--requirepass $(REDIS_PASSWORD)`, probes reading $MYSQL_ROOT_PASSWORD) plus the other ways a secret
    reaches `kubectl describe`, /proc/<pid>/environ or `ps`; the rendered overlays have none of them."""
    docs = vd.load_yaml_docs(BROKEN / "k8s-secrets.broken.yaml")
    assert vd.check_kubernetes(docs) == []  # the schemas alone accept all of it
    text = _joined(vd.check_k8s_secrets(docs))
    for needle in (
        "Deployment/xiaoke-api init container wait-schema: env API_DATABASE_URL: valueFrom.secretKeyRef "
        "xiaoke-secrets/API_DATABASE_URL",
        "Deployment/xiaoke-api container api: env API_SECRET_KEY: valueFrom.secretKeyRef",
        "container api: env API_ORDER_WEBHOOK_SECRET: valueFrom.secretKeyRef",  # optional: true changes nothing
        "container api: envFrom secretRef xiaoke-secrets",
        "container api: env MYSQL_PASSWORD: a secret as an environment variable",  # from a ConfigMap key
        "container api: env API_DATABASE_URL references MYSQL_PASSWORD",
        "container api: env API_DATABASE_URL: a URL with a password",
        "container api: env API_BOOTSTRAP_ADMIN_PASSWORD: a secret as an environment variable",
        "container api: envFrom ConfigMap api-config: API_REDIS_URL: a URL with a password",
        "container api: envFrom ConfigMap api-config: API_IDENTITY_SECRET: a secret as an environment variable",
        "StatefulSet/mysql container mysql: env MYSQL_ROOT_PASSWORD: valueFrom.secretKeyRef",
        "StatefulSet/mysql container mysql: readinessProbe references MYSQL_ROOT_PASSWORD",
        "StatefulSet/redis container redis: args references REDIS_PASSWORD",
        "StatefulSet/redis container redis: args: --requirepass with a value on the command line",
        "CronJob/xiaoke-mysql-backup container mysqldump: command: --password with a value on the command line",
        "CronJob/xiaoke-mysql-backup container mysqldump: lifecycle.preStop: a URL with a password",
    ):
        assert needle in text, needle
    for overlay, rendered_docs in rendered.items():
        assert vd.check_k8s_secrets(rendered_docs) == [], overlay


def test_k8s_secrets_check_allows_secret_files_and_shell_locals() -> None:
    container = {
        "name": "app",
        "image": "x",
        "env": [
            {"name": "API_SECRET_KEY_FILE", "value": "/run/secrets/xiaoke/API_SECRET_KEY"},
            {"name": "API_DATABASE_URL", "value": "mysql+pymysql://xiaoke@mysql:3306/xiaoke"},
        ],
        "command": [
            "sh",
            "-ec",
            'pass="$(cat /run/secrets/xiaoke/P)"; exec app --keepalive 5 - <<EOF\nx $pass\nEOF',
        ],
        "readinessProbe": {
            "exec": {"command": ["sh", "-c", 'MYSQL_PWD="$(cat /run/secrets/x/P)" mysqladmin ping']}
        },
    }
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [container]}}
    assert vd.check_k8s_secrets([pod]) == []
    # KubeRay: rayStartParams become `ray start --<key>=<value>` arguments; the autoscaler sidecar has env too
    ray = {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": {"name": "serving"},
        "spec": {
            "rayClusterConfig": {
                "autoscalerOptions": {
                    "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}}]
                },
                "headGroupSpec": {"rayStartParams": {"num-cpus": "0", "redis-password": "hunter2"}},
            }
        },
    }
    text = _joined(vd.check_k8s_secrets([ray]))
    assert "RayService/serving ray autoscaler: env TOKEN: valueFrom.secretKeyRef s/t" in text
    assert "RayService/serving: rayStartParams redis-password" in text
    assert "num-cpus" not in text


def _worker_group(doc: dict[str, Any]) -> dict[str, Any]:
    group: dict[str, Any] = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    return group


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_ray_worker_drain_check_fails_on_a_bare_ray_stop_or_a_short_grace_period(
    rendered: dict[str, Any], overlay: str
) -> None:
    """The worker preStop was `ray stop` in the default 30 s grace period: replicas died with requests in
    flight. It must drain (deploy/ray_worker_prestop.py) and the grace period must cover the drain deadline
    plus `ray stop`."""
    real = one(rendered[overlay], "RayService")
    assert vd.check_ray_worker_drain(real) == []
    margin = vd._worker_prestop().MARGIN_S

    doc = copy.deepcopy(real)
    spec = _worker_group(doc)["template"]["spec"]
    spec["containers"][0]["lifecycle"]["preStop"] = {"exec": {"command": ["/bin/sh", "-c", "ray stop"]}}
    del spec["terminationGracePeriodSeconds"]
    assert "does not drain the node" in _joined(vd.check_ray_worker_drain(doc))

    doc = copy.deepcopy(real)
    del _worker_group(doc)["template"]["spec"]["terminationGracePeriodSeconds"]  # Kubernetes' default: 30 s
    text = _joined(vd.check_ray_worker_drain(doc))
    assert f"terminationGracePeriodSeconds 30 < drain deadline 60 s + {margin} s" in text

    doc = copy.deepcopy(real)
    command = _worker_group(doc)["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["exec"][
        "command"
    ]
    command[command.index("--deadline-s") + 1] = "80"  # 80 + margin > 90
    assert "< drain deadline 80 s" in _joined(vd.check_ray_worker_drain(doc))
    assert "< drain deadline 80 s" in _joined(vd.check_custom_resources([doc]))  # part of crd-schemas


def test_servicemonitor_schema_fails_on_broken_servicemonitor() -> None:
    text = _joined(vd.check_custom_resources(vd.load_yaml_docs(BROKEN / "servicemonitor.broken.yaml")))
    assert "selector" in text and "30 seconds" in text


def test_prometheusrule_schema_fails_on_broken_rule() -> None:
    text = _joined(vd.check_custom_resources(vd.load_yaml_docs(BROKEN / "prometheusrule.broken.yaml")))
    assert "rules.0" in text  # alert and record at once
    assert "expr" in text
    assert "5 minutes" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_promtool_fails_on_unparsable_promql() -> None:
    docs = vd.load_yaml_docs(BROKEN / "prometheusrule-promql.broken.yaml")
    assert vd.check_custom_resources(docs) == []  # the schema alone cannot see it
    assert "promtool check rules" in _joined(vd.check_promtool(docs))


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_real_rules_pass_promtool_and_their_alert_tests(rendered: dict[str, Any]) -> None:
    assert vd.check_promtool(rendered["cpu"], ROOT / "deploy" / "prometheus" / "rules.test.yaml") == []


@needs_nginx
def test_nginx_fails_on_broken_conf() -> None:
    assert vd.check_nginx(BROKEN / "nginx.broken.conf")


def test_missing_optional_tools_are_skipped_with_a_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd.shutil, "which", lambda *args, **kwargs: None)
    nginx = vd._attempt("nginx -t", "x", lambda: vd.check_nginx(ROOT / "deploy" / "nginx.conf"))
    promtool = vd._attempt("promtool", "x", lambda: vd.check_promtool([]))
    assert nginx.findings == [] and "nginx not installed" in (nginx.skipped or "")
    assert promtool.findings == [] and "promtool not installed" in (promtool.skipped or "")
    # a missing kubectl is not optional: it is a finding
    docs, findings = vd.render_kustomize(ROOT / "k8s" / "overlays" / "cpu")
    assert docs == [] and "kubectl not found" in findings[0]


def test_a_crashing_check_is_a_finding() -> None:
    def boom() -> list[str]:
        raise RuntimeError("unexpected")

    result = vd._attempt("x", "y", boom)
    assert result.findings and "RuntimeError" in result.findings[0]
    assert vd.print_summary([result]) == 1


def test_every_broken_fixture_is_exercised() -> None:
    listed = {p.name for p in BROKEN.iterdir()} - {"README.md"}
    source = Path(__file__).read_text(encoding="utf-8")
    assert {name for name in listed if f'"{name}"' not in source} == set()


# ------------------------------------------------------------------------------------ real artifacts
def test_real_dockerfiles_pass_hadolint() -> None:
    dockerfiles = sorted(ROOT.glob("Dockerfile*"))
    assert {p.name for p in dockerfiles} >= {"Dockerfile.api", "Dockerfile.gpu", "Dockerfile.web"}
    assert vd.check_hadolint(dockerfiles) == []


def test_real_compose_passes_schema() -> None:
    assert vd.check_compose(ROOT / "docker-compose.yml") == []


def test_compose_profiles_and_health_ordering() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["serving"]["profiles"] == ["cpu"]
    assert services["serving-gpu"]["profiles"] == ["gpu"]
    devices = services["serving-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert services["api"]["depends_on"]["migrations"]["condition"] == "service_completed_successfully"
    assert services["api"]["depends_on"]["mysql"]["condition"] == "service_healthy"
    assert services["migrations"]["command"] == ["migrate"]
    assert "--appendonly yes" in " ".join(services["redis"]["command"])
    assert "--character-set-server=utf8mb4" in services["mysql"]["command"]
    assert {"models", "indexes"} <= set(compose["volumes"])


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_real_overlays_pass_serve_schema(rendered: dict[str, Any], overlay: str) -> None:
    pytest.importorskip("ray.serve.schema")
    assert vd.check_serve_schema(one(rendered[overlay], "RayService")) == []


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_real_overlays_match_the_serving_rooms_serve_configs(rendered: dict[str, Any], overlay: str) -> None:
    serving_config = ROOT / "serving" / "config" / f"{overlay}.yaml"
    if not serving_config.exists():
        pytest.skip(f"{serving_config} not written yet")
    assert vd.check_serving_config_file(one(rendered[overlay], "RayService"), serving_config) == []


@pytest.mark.parametrize("overlay", ["cpu", "gpu"])
def test_real_overlays_pass_kubernetes_and_crd_schemas(rendered: dict[str, Any], overlay: str) -> None:
    docs = rendered[overlay]
    assert vd.check_kubernetes(docs) == []
    assert vd.check_custom_resources(docs) == []
    kinds = {d["kind"] for d in docs}
    assert {
        "RayService",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Ingress",
        "NetworkPolicy",
        "Job",
        "StatefulSet",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",
    } <= kinds


def test_gpu_overlay_requests_gpus_and_cpu_overlay_does_not(rendered: dict[str, Any]) -> None:
    def workers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return one(docs, "RayService")["spec"]["rayClusterConfig"]["workerGroupSpecs"]

    (gpu,) = workers(rendered["gpu"])
    container = gpu["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].startswith("xiaoke/serving-gpu")
    assert gpu["template"]["spec"]["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert gpu["template"]["spec"]["nodeSelector"]
    for group in workers(rendered["cpu"]):
        for c in group["template"]["spec"]["containers"]:
            assert "nvidia.com/gpu" not in (c.get("resources") or {}).get("limits", {})
            assert c["image"].startswith("xiaoke/serving-cpu")


def test_mutating_a_real_rayservice_is_caught(rendered: dict[str, Any]) -> None:
    doc = copy.deepcopy(one(rendered["gpu"], "RayService"))
    del doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["groupName"]
    doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0][
        "resources"
    ] = {}
    text = _joined(vd.check_custom_resources([doc]))
    assert "groupName" in text and "nvidia.com/gpu" in text


def test_capacity_check_catches_replicas_that_cannot_be_placed(rendered: dict[str, Any]) -> None:
    doc = copy.deepcopy(one(rendered["gpu"], "RayService"))
    assert vd.check_serve_config(doc) == []
    group = doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]
    group["maxReplicas"] = 2  # 4 GPU deployments x 4 replicas x 0.25 GPU need 4 GPUs
    assert "need 24 CPU / 4 GPU" in _joined(vd.check_serve_config(doc))
    group["maxReplicas"] = 4
    serve = yaml.safe_load(doc["spec"]["serveConfigV2"])
    retriever = next(d for d in serve["applications"][0]["deployments"] if d["name"] == "Retriever")
    retriever["autoscaling_config"]["min_replicas"] = 2  # 5 x 0.25 GPU at rest: a second GPU pod always up
    doc["spec"]["serveConfigV2"] = yaml.safe_dump(serve)
    assert "at min_replicas need 7 CPU / 1.25 GPU" in _joined(vd.check_serve_config(doc))
    group["rayStartParams"]["num-cpus"] = "0.5"  # no pod can host a 1-CPU replica
    assert "fits on no worker pod" in _joined(vd.check_serve_config(doc))


def test_api_deployment_probes_and_networkpolicies(rendered: dict[str, Any]) -> None:
    docs = rendered["cpu"]
    api = one(docs, "Deployment", "xiaoke-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert "replicas" not in api["spec"]  # HPA-owned (test_runtime_contracts.py)
    assert one(docs, "HorizontalPodAutoscaler", "xiaoke-api")["spec"]["minReplicas"] >= 2
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["spec"]["template"]["spec"]["topologySpreadConstraints"]
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    serving_rules = policies["serving-ingress"]["spec"]["ingress"]
    serve_port_rules = [r for r in serving_rules if {"port": 8001, "protocol": "TCP"} in r.get("ports", [])]
    assert serve_port_rules == [
        {
            "from": [{"podSelector": {"matchLabels": {"xiaoke.io/serving-client": "true"}}}],
            "ports": [{"port": 8001, "protocol": "TCP"}],
        }
    ]
    clients = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet", "Job")
        and d["spec"]["template"]["metadata"]["labels"].get("xiaoke.io/serving-client") == "true"
    ]
    assert clients == ["xiaoke-api"]


def test_secret_example_holds_no_real_secret() -> None:
    docs = vd.load_yaml_docs(ROOT / "k8s" / "base" / "secret.example.yaml")
    assert vd.check_kubernetes(docs) == []
    for value in docs[0]["stringData"].values():
        assert "CHANGE_ME" in value
    # compose: .env is interpolated into the containers' environment, so it holds settings only; the secrets
    # are files (scripts/compose_secrets.sh)
    env = (ROOT / ".env.example").read_text(encoding="utf-8")
    keys = [ln.split("=", 1)[0].lstrip("# ") for ln in env.splitlines() if re.match(r"#? ?[A-Z_]+=", ln)]
    assert "MYSQL_USER" in keys and "XIAOKE_SECRETS_DIR" in keys
    assert [k for k in keys if vd._secret_var(k)] == []


@needs_nginx
def test_real_nginx_conf_passes() -> None:
    assert vd.check_nginx(ROOT / "deploy" / "nginx.conf") == []


def test_validate_deploy_exits_zero_on_real_tree(capsys: pytest.CaptureFixture[str]) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    assert vd.main([]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


# ---------------------------------------------------------------------------- serving entrypoint
def test_entrypoint_binds_all_interfaces_and_keeps_the_rest() -> None:
    cfg: dict[str, Any] = {
        "http_options": {"host": "127.0.0.1", "port": 8001, "keep_alive_timeout_s": 5},
        "applications": [{"name": "x"}],
    }
    out = entrypoint.render(cfg, {})
    assert out["http_options"] == {"host": "0.0.0.0", "port": 8001, "keep_alive_timeout_s": 5}
    assert out["applications"] == cfg["applications"]
    assert cfg["http_options"]["host"] == "127.0.0.1"  # input untouched
    assert entrypoint.render(cfg, {"SERVING_HTTP_PORT": "9001"})["http_options"]["port"] == 9001


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_entrypoint_output_is_a_valid_serve_config(profile: str) -> None:
    schema = pytest.importorskip("ray.serve.schema")
    source = ROOT / "serving" / "config" / f"{profile}.yaml"
    if not source.exists():
        pytest.skip(f"{source} not written yet")
    out = entrypoint.render(yaml.safe_load(source.read_text(encoding="utf-8")), {})
    parsed = schema.ServeDeploySchema.model_validate(out)
    assert parsed.http_options.host == "0.0.0.0"
    assert parsed.http_options.port == 8001


def test_entrypoint_rejects_non_serve_config_and_bad_profile() -> None:
    with pytest.raises(SystemExit):
        entrypoint.render({"proxy_location": "EveryNode"}, {})
    with pytest.raises(SystemExit):
        entrypoint.config_path({"SERVING_PROFILE": "tpu"})
    assert entrypoint.config_path({"SERVING_PROFILE": "gpu"}).name == "gpu.yaml"
    assert str(entrypoint.config_path({"SERVING_CONFIG": "/etc/x.yaml"})) == "/etc/x.yaml"


def test_grafana_dashboard_configmap_is_valid_json_with_queries(rendered: dict[str, Any]) -> None:
    import json

    cm = one(rendered["cpu"], "ConfigMap", "xiaoke-grafana-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["xiaoke-overview.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert dashboard["uid"] and len(exprs) >= 8
    joined = " ".join(exprs)
    for metric in (
        "xiaoke_api_http_request_seconds_bucket",
        "ray_serve_deployment_queued_queries",
        "ray_node_gram_used",
    ):
        assert metric in joined


# ------------------------------------------------------------------------------------------- runbook
def test_every_alert_has_a_runbook_section() -> None:
    docs = vd.load_yaml_docs(ROOT / "k8s" / "base" / "monitoring.yaml")
    rule = one(docs, "PrometheusRule")
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert len(alerts) >= 5
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    headings = {line[4:].strip() for line in runbook.splitlines() if line.startswith("### ")}
    for alert in alerts:
        assert alert["alert"] in headings, f"no '### {alert['alert']}' in docs/operations.md"
        assert alert["annotations"]["runbook"] == f"docs/operations.md#{alert['alert'].lower()}"
    covered = " ".join(a["expr"] for a in alerts)
    for signal in (
        "xiaoke_api_http_request_seconds",  # p99 latency
        "xiaoke_api_http_requests_total",  # error rate (via the recording rule)
        "ray_xiaoke_serving_queue_seconds_bucket",  # serving saturation: time in a model's batch queue
        "ray_serve_autoscaling_desired_replicas",  # replicas at max
        "ray_node_gram_used",  # GPU memory
    ):
        recorded = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if "record" in r]
        assert signal in covered or any(signal in e for e in recorded), signal
