"""The Kubernetes manifests and the Dockerfile: every overlay renders, validates offline, and keeps its invariants."""
from __future__ import annotations

import copy
import functools
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "k8s"
OVERLAYS = ("staging", "production")
#: The CRD schemas live beside the repository (in CI too), never copied into it.
CRDS = Path(__file__).resolve().parents[2] / "shared" / "k8s-crds"
#: The oldest Kubernetes the manifests promise to work on; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.30.0"
KUBECTL = shutil.which("kubectl")
SOURCES = ("members", "claims", "contracts", "recruitment")
GATEWAY = {"app.kubernetes.io/name": "union-gateway", "app.kubernetes.io/component": "api"}
ROUTER = {"app.kubernetes.io/name": "union-gateway-router", "app.kubernetes.io/component": "router"}
CNPG_GROUP = "postgresql.cnpg.io"

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed: cannot render the kustomize overlays")

Manifest = dict[str, Any]


@functools.cache
def render(overlay: str) -> tuple[Manifest, ...]:
    """The overlay as `kubectl kustomize` renders it."""
    result = subprocess.run([KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def find(docs: tuple[Manifest, ...], kind: str, name: str | None = None) -> list[Manifest]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def one(docs: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs(docs: tuple[Manifest, ...]) -> Iterator[tuple[str, Manifest]]:
    for doc in docs:
        template = doc.get("spec", {}).get("template")
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job") and template:
            yield f'{doc["kind"]}/{doc["metadata"]["name"]}', template["spec"]


def containers(docs: tuple[Manifest, ...]) -> Iterator[tuple[str, Manifest, Manifest]]:
    for where, spec in pod_specs(docs):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield f'{where}/{container["name"]}', spec, container


def env_of(container: Manifest) -> dict[str, Manifest]:
    return {e["name"]: e for e in container.get("env", [])}


def config_map(docs: tuple[Manifest, ...], prefix: str) -> Manifest:
    # Generated ConfigMaps carry a content hash suffix.
    found = [d for d in find(docs, "ConfigMap") if d["metadata"]["name"].startswith(prefix + "-")]
    assert len(found) == 1, prefix
    return found[0]


def gateway_container(docs: tuple[Manifest, ...]) -> Manifest:
    return one(docs, "Deployment", "union-gateway")["spec"]["template"]["spec"]["containers"][0]


# --------------------------------------------------------------------------- offline schema validation

def _strict(schema: Any) -> Any:
    """The CRD schema with unknown fields rejected, as the API server's strict field validation does."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


@functools.cache
def crd_validator(kind: str) -> jsonschema.Validator:
    if not CRDS.is_dir():
        pytest.skip(f"CRD schemas not found at {CRDS}")
    crd = yaml.safe_load((CRDS / f"{CNPG_GROUP}_{kind.lower()}s.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    return jsonschema.Draft7Validator(schema)


def crd_errors(doc: Manifest) -> list[str]:
    validator = crd_validator(doc["kind"])
    return [f'{"/".join(map(str, e.absolute_path))}: {e.message}' for e in validator.iter_errors(doc)]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_builtin_manifest_validates_in_strict_mode(overlay: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = render(overlay)
    builtin = [d for d in docs if not d["apiVersion"].startswith(CNPG_GROUP + "/")]
    assert len(builtin) > 20
    for doc in builtin:
        # Raises on an unknown field or a wrong type, with the path to it.
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_strict_validation_rejects_a_misspelt_field() -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    deployment = yaml.safe_load((K8S / "base" / "gateway" / "deployment.yaml").read_text())
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_cloudnativepg_resource_matches_its_crd(overlay: str) -> None:
    docs = render(overlay)
    custom = [d for d in docs if d["apiVersion"].startswith(CNPG_GROUP + "/")]
    assert {d["kind"] for d in custom} == {"Cluster", "Pooler"}
    for doc in custom:
        assert doc["apiVersion"] == f"{CNPG_GROUP}/v1"
        assert crd_errors(doc) == [], f'{doc["kind"]}/{doc["metadata"]["name"]}'


def test_crd_validation_rejects_a_bad_pool_mode_and_an_unknown_field() -> None:
    poolers = [d for d in yaml.safe_load_all((K8S / "base" / "postgres" / "poolers.yaml").read_text()) if d]
    bad_mode = copy.deepcopy(poolers[0])
    bad_mode["spec"]["pgbouncer"]["poolMode"] = "statement"
    assert crd_errors(bad_mode)
    unknown = copy.deepcopy(poolers[0])
    unknown["spec"]["pgbouncer"]["pool_mode"] = "session"
    assert crd_errors(unknown)


# --------------------------------------------------------------------------- invariants

@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down_and_sized(overlay: str) -> None:
    found = list(containers(render(overlay)))
    assert len(found) >= 5  # gateway, migrate, router, collector, redis
    for where, spec, container in found:
        pod_security = spec.get("securityContext", {})
        security = container.get("securityContext", {})
        assert security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is True, where
        user = security.get("runAsUser", pod_security.get("runAsUser"))
        assert isinstance(user, int) and user > 0, where
        assert security.get("readOnlyRootFilesystem") is True, where
        assert security.get("allowPrivilegeEscalation") is False, where
        assert security.get("capabilities", {}).get("drop") == ["ALL"], where
        seccomp = security.get("seccompProfile", pod_security.get("seccompProfile", {}))
        assert seccomp.get("type") == "RuntimeDefault", where
        resources = container.get("resources", {})
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(bound, {})), (where, bound)


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_image_floats(overlay: str) -> None:
    for where, _, container in containers(render(overlay)):
        image = container["image"]
        name, _, tag = image.rpartition(":")
        assert name and "/" not in tag, f"{where}: {image} has no tag"
        assert tag != "latest", where
    for cluster in find(render(overlay), "Cluster"):
        assert not cluster["spec"]["imageName"].endswith(":latest")


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_probes_and_drains_within_its_grace_period(overlay: str) -> None:
    docs = render(overlay)
    spec = one(docs, "Deployment", "union-gateway")["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert port_names[container["readinessProbe"]["httpGet"]["port"]] == 8000
    assert container["args"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]

    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0].endswith("sleep")
    pre_stop = int(command[1])
    drain = int(config_map(docs, "union-gateway-config")["data"]["UNION_GATEWAY_DRAIN_SECONDS"])
    assert pre_stop > 0 and drain > 0
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_gets_every_source_from_its_pooler_and_secrets_from_secrets(overlay: str) -> None:
    docs = render(overlay)
    poolers = {p["metadata"]["name"]: p for p in find(docs, "Pooler")}
    clusters = {c["metadata"]["name"] for c in find(docs, "Cluster")}
    assert clusters == {f"{s}-db" for s in SOURCES}
    services = {s["metadata"]["name"] for s in find(docs, "Service")}
    settings = config_map(docs, "union-gateway-config")["data"]
    for where, container in (("gateway", gateway_container(docs)),
                             ("migrate", one(docs, "Job", "union-gateway-migrate")["spec"]["template"]["spec"]["containers"][0])):
        env = env_of(container)
        assert container["envFrom"][0]["configMapRef"]["name"] == config_map(docs, "union-gateway-config")["metadata"]["name"]
        for source in SOURCES:
            url = env[f"UNION_GATEWAY_{source.upper()}_DATABASE_URL"]["value"]
            match = re.fullmatch(r"postgresql://\$\((\w+)\):\$\((\w+)\)@([\w-]+):5432/app", url)
            assert match, (where, url)
            user_var, password_var, host = match.groups()
            assert host in poolers and poolers[host]["spec"]["cluster"]["name"] == f"{source}-db"
            for var, key in ((user_var, "username"), (password_var, "password")):
                ref = env[var]["valueFrom"]["secretKeyRef"]
                assert ref == {"name": f"{source}-db-app", "key": key}, (where, var)
            # $(VAR) only expands variables defined earlier in the list.
            names = list(env)
            assert names.index(password_var) < names.index(f"UNION_GATEWAY_{source.upper()}_DATABASE_URL")
        assert env["UNION_GATEWAY_INSURANCE_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "token"
    # No secret sits in the ConfigMap, and the rest is where the gateway expects it.
    assert not any(re.search(r"TOKEN|PASSWORD|SECRET", key) for key in settings)
    assert settings["UNION_GATEWAY_INSURANCE_URL"].startswith("https://")
    assert settings["UNION_GATEWAY_REDIS_URL"].startswith("redis://redis:6379")
    assert "redis" in services
    assert settings["OTEL_SERVICE_NAME"] == "union-gateway"
    endpoint = settings["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert re.fullmatch(r"http://otel-collector:431[78]", endpoint)
    assert "otel-collector" in services


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_poolers_use_session_mode(overlay: str) -> None:
    # asyncpg's statement cache, LISTEN and the migration advisory lock need a
    # session; transaction mode would break them (see postgres/poolers.yaml).
    for pooler in find(render(overlay), "Pooler"):
        assert pooler["spec"]["pgbouncer"]["poolMode"] == "session"
        assert pooler["spec"]["type"] == "rw"


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
    return True


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_router_reaches_the_gateway(overlay: str) -> None:
    docs = render(overlay)
    pod_labels = one(docs, "Deployment", "union-gateway")["spec"]["template"]["metadata"]["labels"]
    router_labels = one(docs, "Deployment", "union-gateway-router")["spec"]["template"]["metadata"]["labels"]
    policies = [p for p in find(docs, "NetworkPolicy") if _selects(p["spec"]["podSelector"], pod_labels)]
    assert len(policies) == 1
    policy = policies[0]["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (rule,) = policy["ingress"]
    (peer,) = rule["from"]
    assert set(peer) == {"podSelector"}, "no namespace or ipBlock peer: only the router's pods"
    assert peer["podSelector"]["matchLabels"] == ROUTER
    assert _selects(peer["podSelector"], router_labels)
    assert [p["port"] for p in rule["ports"]] == [8000]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_egress_is_only_what_it_uses(overlay: str) -> None:
    docs = render(overlay)
    policy = one(docs, "NetworkPolicy", "union-gateway")["spec"]
    allowed: dict[str, set[int]] = {}
    for rule in policy["egress"]:
        ports = {p["port"] for p in rule["ports"]}
        for peer in rule["to"]:
            if "ipBlock" in peer:
                key = "insurance"
                assert peer["ipBlock"]["cidr"] != "0.0.0.0/0"
            elif "namespaceSelector" in peer:
                key = "dns"
                assert peer["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
            else:
                selector = peer["podSelector"]
                if selector.get("matchExpressions"):
                    (expression,) = selector["matchExpressions"]
                    assert expression["key"] == "cnpg.io/poolerName"
                    assert set(expression["values"]) == {p["metadata"]["name"] for p in find(docs, "Pooler")}
                    key = "postgres"
                else:
                    key = selector["matchLabels"]["app.kubernetes.io/name"]
            allowed.setdefault(key, set()).update(ports)
    assert allowed == {"postgres": {5432}, "insurance": {443}, "otel-collector": {4317, 4318},
                       "redis": {6379}, "dns": {53}}


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_and_disruption_budget_hold_the_gateway(overlay: str) -> None:
    docs = render(overlay)
    deployment = one(docs, "Deployment", "union-gateway")
    hpa = one(docs, "HorizontalPodAutoscaler", "union-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "union-gateway"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    (pdb,) = [p for p in find(docs, "PodDisruptionBudget")
              if _selects(p["spec"]["selector"], deployment["spec"]["template"]["metadata"]["labels"])]
    assert pdb["metadata"]["name"] == "union-gateway"
    assert pdb["spec"]["selector"]["matchLabels"] == GATEWAY
    # Session-mode poolers must have a server connection for every client one.
    pool = int(config_map(docs, "union-gateway-config")["data"]["UNION_GATEWAY_POOL_MAX_SIZE"])
    for pooler in find(docs, "Pooler"):
        assert int(pooler["spec"]["pgbouncer"]["parameters"]["default_pool_size"]) > pool * hpa["spec"]["maxReplicas"]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_migration_job_runs_migrate_before_the_rollout(overlay: str) -> None:
    docs = render(overlay)
    job = one(docs, "Job", "union-gateway-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["union-gateway", "migrate"]
    assert container["image"] == gateway_container(docs)["image"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"

    def wave(doc: Manifest) -> int:
        return int(doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))

    annotations = job["metadata"]["annotations"]
    assert annotations["argocd.argoproj.io/hook"] == "Sync"
    assert "BeforeHookCreation" in annotations["argocd.argoproj.io/hook-delete-policy"]
    databases = find(docs, "Cluster") + find(docs, "Pooler") + [config_map(docs, "union-gateway-config")]
    assert max(wave(d) for d in databases) < wave(job) < wave(one(docs, "Deployment", "union-gateway"))


@needs_kubectl
def test_the_router_is_public_and_forwards_to_the_gateway() -> None:
    docs = render("production")
    public = one(docs, "Service", "union-gateway-public")
    assert public["spec"]["selector"] == ROUTER
    assert public["spec"]["type"] == "LoadBalancer"
    assert one(docs, "Service", "union-gateway")["spec"]["type"] == "ClusterIP"
    router = config_map(docs, "router-config")["data"]
    assert '@join__graph(name: "union_gateway", url: "http://union-gateway:8000/graphql")' in router["supergraph.graphql"]
    assert "'authorization'" in router["gateway.config.mjs"]


@needs_kubectl
def test_overlays_differ_where_intended() -> None:
    staging, production = render("staging"), render("production")
    assert {d["metadata"]["namespace"] for d in staging if "namespace" in d["metadata"]} == {"union-gateway-staging"}
    assert {d["metadata"]["namespace"] for d in production if "namespace" in d["metadata"]} == {"union-gateway"}
    hpa = lambda docs: one(docs, "HorizontalPodAutoscaler", "union-gateway")["spec"]  # noqa: E731
    assert (hpa(staging)["minReplicas"], hpa(staging)["maxReplicas"]) == (2, 4)
    assert (hpa(production)["minReplicas"], hpa(production)["maxReplicas"]) == (3, 12)
    assert {c["spec"]["instances"] for c in find(staging, "Cluster")} == {1}
    assert {c["spec"]["instances"] for c in find(production, "Cluster")} == {3}
    assert {c["spec"]["storage"]["size"] for c in find(production, "Cluster")} == {"50Gi"}
    assert {p["spec"]["instances"] for p in find(production, "Pooler")} == {2}
    assert one(staging, "Deployment", "union-gateway-router")["spec"]["replicas"] == 2
    assert one(production, "Deployment", "union-gateway-router")["spec"]["replicas"] == 3
    insurance = lambda docs: config_map(docs, "union-gateway-config")["data"]["UNION_GATEWAY_INSURANCE_URL"]  # noqa: E731
    assert insurance(staging) != insurance(production)
    collector = lambda docs: yaml.safe_load(config_map(docs, "otel-collector-config")["data"]["config.yaml"])  # noqa: E731
    assert collector(staging)["service"]["pipelines"]["traces"]["exporters"] == ["debug"]
    assert collector(production)["service"]["pipelines"]["traces"]["exporters"] == ["otlp"]
    # The rest is shared: the same image everywhere.
    assert gateway_container(staging)["image"] == gateway_container(production)["image"]


@needs_kubectl
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_collector_receives_otlp_and_exports(overlay: str) -> None:
    config = yaml.safe_load(config_map(render(overlay), "otel-collector-config")["data"]["config.yaml"])
    protocols = config["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"].endswith(":4317") and protocols["http"]["endpoint"].endswith(":4318")
    for pipeline in config["service"]["pipelines"].values():
        assert pipeline["receivers"] == ["otlp"]
        assert all(exporter in config["exporters"] for exporter in pipeline["exporters"])


# --------------------------------------------------------------------------- Dockerfile

def dockerfile_stages() -> list[dict[str, Any]]:
    """The Dockerfile as stages of (instruction, argument) pairs, continuations joined."""
    text = (REPO / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    heredoc: str | None = None
    for line in text.splitlines():
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, argument = line.partition(" ")
        instruction = instruction.upper()
        marker = re.search(r"<<-?'?(\w+)'?", argument)
        if marker:
            heredoc = marker.group(1)
        if instruction == "ARG" and not stages:
            name, _, default = argument.partition("=")
            args[name] = default
        elif instruction == "FROM":
            parts = argument.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stages.append({"image": image, "name": parts[2] if len(parts) > 2 else None, "steps": []})
        else:
            stages[-1]["steps"].append((instruction, argument))
    return stages


def test_the_dockerfile_builds_in_two_stages_from_a_pinned_slim_python() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    for stage in stages:
        image = stage["image"]
        assert ":" in image and not image.endswith(":latest"), image
        assert image.startswith("python:3.11-slim"), image
    builder, runtime = stages[0], stages[-1]
    assert any(i == "RUN" and "pip wheel" in a for i, a in builder["steps"])
    runtime_runs = " ".join(a for i, a in runtime["steps"] if i == "RUN")
    for tool in ("build-essential", "gcc", "apt-get install"):
        assert tool not in runtime_runs, f"{tool} in the final stage"
    assert "--no-index" in runtime_runs, "the runtime installs only the builder's wheels"


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    runtime = dockerfile_stages()[-1]
    users = [a for i, a in runtime["steps"] if i == "USER"]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "Kubernetes can only verify runAsNonRoot for a numeric USER"
    deployment = yaml.safe_load((K8S / "base" / "gateway" / "deployment.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_the_image_serves_on_8000() -> None:
    runtime = dockerfile_stages()[-1]
    assert ("EXPOSE", "8000") in runtime["steps"]
    (cmd,) = [a for i, a in runtime["steps"] if i == "CMD"]
    assert shlex.split(cmd.replace('"', "").strip("[]").replace(",", " ")) == \
        ["union-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_the_image_carries_the_migrations() -> None:
    runtime = dockerfile_stages()[-1]
    assert any(i == "COPY" and a.split()[0].rstrip("/") == "migrations" for i, a in runtime["steps"])
    ignored = (REPO / ".dockerignore").read_text().split()
    for needed in ("migrations", "sources", "web", "pyproject.toml"):
        assert needed not in ignored
