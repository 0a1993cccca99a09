"""deploy/k8s: the Kustomize base and the production overlay, rendered by
``kubectl kustomize`` and validated against the Kubernetes schemas
(kubernetes-validate, strict: no field the API does not know), then checked against
the code they deploy: probes on /healthz at the port the service listens on,
requests and limits, every required setting provided, secrets referenced and never
defined, a migration Job per service running its real ``migrate`` command,
PodDisruptionBudgets that leave a replica up, and autoscalers for rules and notify
bounded by the partition count of every topic they consume.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import kubernetes_validate
import pytest
import yaml
from ops_pack import DEPLOY, EVENT_SERVICES, SERVICES, settings_env

from reelpolicy_contracts import topics
from service_harness import settings_for

K8S = DEPLOY / "k8s"
OVERLAYS = {"base": K8S / "base", "production": K8S / "overlays" / "production"}
KUBERNETES_VERSION = "1.32.0"  # the kubectl on these machines; kubernetes-validate has its schemas
DEPLOYED = SERVICES
"""Every workload with a Deployment, Service, migration Job and PodDisruptionBudget."""
SCALED = ("rules", "notify")
SHARED_SECRET = "reelpolicy-secrets"
PORTAL_SECRET = "reelpolicy-portal-secrets"
SECRET_SETTINGS: dict[str, dict[str, str]] = {
    **{name: {"REELPOLICY_SECRET_KEY": SHARED_SECRET} for name in EVENT_SERVICES},
    # the portal signs its own cookies and checks keys at the registry: no shared key
    "portal": {
        "PORTAL_SESSION_SECRET": PORTAL_SECRET,
        "PORTAL_KEY_ENCRYPTION_KEYS": PORTAL_SECRET,
    },
}
"""Per workload, each secret setting and the Secret it must come from."""
README = K8S / "README.md"

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl (v1.27+, kustomize built in) is missing: apt-get install -y kubectl"
            " from the Kubernetes apt repository; .ci/run does this when it is missing"
        )
    return found


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def rendered(request: pytest.FixtureRequest, kubectl: str) -> tuple[str, list[Doc]]:
    done = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS[request.param])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    assert docs, f"{request.param} renders nothing"
    return request.param, docs


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield f"{doc['kind']} {doc['metadata']['name']}", doc["spec"]["template"]["spec"]


def test_every_manifest_validates_against_the_kubernetes_schemas(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = "/".join(str(p) for p in error.path)
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {where}: {error.message}")


def test_a_deployment_service_and_migration_job_per_service(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    deployments, jobs, services = (of_kind(docs, k) for k in ("Deployment", "Job", "Service"))
    assert set(deployments) == set(DEPLOYED)
    assert set(services) == set(DEPLOYED)
    assert set(jobs) == {f"{name}-migrate" for name in DEPLOYED}
    for name in DEPLOYED:
        [server] = deployments[name]["spec"]["template"]["spec"]["containers"]
        [migrate] = jobs[f"{name}-migrate"]["spec"]["template"]["spec"]["containers"]
        assert server["command"] == [f"reelpolicy-{name}", "serve"]
        assert migrate["command"] == [f"reelpolicy-{name}", "migrate"]
        assert migrate["image"] == server["image"], "the migration must be the release's"
        assert migrate["envFrom"] == server["envFrom"]
        assert migrate["env"] == server["env"]
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        selector = deployments[name]["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items()
        service = services[name]["spec"]
        assert service["selector"].items() <= pod_labels.items()
        assert service["selector"]["app.kubernetes.io/component"] == "server"
        assert [p["targetPort"] for p in service["ports"]] == ["http"]


@pytest.mark.parametrize("name", DEPLOYED)
def test_the_migrate_command_exists(name: str) -> None:
    cli = importlib.import_module(f"reelpolicy_{name}.cli")
    with pytest.raises(SystemExit) as exited:
        cli.main(["migrate", "--help"])
    assert exited.value.code == 0


def container_env(docs: list[Doc], container: Doc) -> dict[str, str]:
    """The container's environment: its ConfigMaps' data, and secret references as
    ``secret:<name>/<key>``."""
    config_maps = of_kind(docs, "ConfigMap")
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert "configMapRef" in source, f"envFrom only from ConfigMaps, not {source}"
        name = source["configMapRef"]["name"]
        assert name in config_maps, f"ConfigMap {name} is not in the manifests"
        env.update(config_maps[name]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        assert ref.get("optional") is not True, item["name"]
        env[item["name"]] = f"secret:{ref['name']}/{ref['key']}"
    return env


def test_every_setting_a_service_requires_is_provided_and_every_one_given_is_read(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    for where, spec in pod_specs(docs):
        name = where.split()[1].removesuffix("-migrate")
        [container] = spec["containers"]
        env = container_env(docs, container)
        declared = settings_env(name)
        missing = sorted(k for k, required in declared.items() if required and k not in env)
        assert not missing, f"{where} lacks required settings {missing}"
        unknown = sorted(env.keys() - declared.keys())
        assert not unknown, f"{where} sets {unknown}, which its Settings never reads"
        assert env["SERVICE_NAME"] == name


def test_secrets_are_referenced_never_defined(rendered: tuple[str, list[Doc]]) -> None:
    _, docs = rendered
    assert not of_kind(docs, "Secret"), "secret values do not belong in git"
    referenced: set[str] = set()
    for where, spec in pod_specs(docs):
        name = where.split()[1].removesuffix("-migrate")
        [container] = spec["containers"]
        env = container_env(docs, container)
        assert env["DATABASE_URL"] == f"secret:reelpolicy-{name}-database/DATABASE_URL"
        for key, secret in SECRET_SETTINGS[name].items():
            assert env[key] == f"secret:{secret}/{key}", (where, key)
        for key, value in env.items():
            secret_words = ("SECRET", "PASSWORD", "SEALING", "ENCRYPTION", "DATABASE_URL")
            if any(word in key for word in secret_words):
                assert value.startswith("secret:"), f"{where}: {key} is not from a Secret"
            if value.startswith("secret:"):
                referenced.add(value.removeprefix("secret:").split("/")[0])
    readme = README.read_text(encoding="utf-8")
    for secret in referenced:  # the README says how to create each (databases in a loop)
        generic = secret
        for name in DEPLOYED:
            generic = generic.replace(f"reelpolicy-{name}-database", "reelpolicy-$svc-database")
        assert f"create secret generic {generic}" in readme, secret
    databases = {f"reelpolicy-{name}-database" for name in DEPLOYED}
    assert referenced == {SHARED_SECRET, PORTAL_SECRET, *databases}
    for name in DEPLOYED:  # the README's loop creates every workload's database Secret
        assert re.search(rf"for svc in [a-z ]*\b{name}\b", readme), name


def test_probes_watch_healthz_on_the_port_the_service_listens_on(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    for name, deployment in of_kind(docs, "Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        env = container_env(docs, container)
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["http"] == int(env["HTTP_PORT"]), name
        assert env["HTTP_HOST"] == "0.0.0.0", f"{name} must listen beyond the pod's loopback"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            check = container[probe]["httpGet"]
            assert check["path"] == "/healthz", (name, probe)
            assert check["port"] in ("http", ports["http"]), (name, probe)
        ready, live = container["readinessProbe"], container["livenessProbe"]
        # liveness gives up later than readiness: an outage takes a replica out of the
        # Service long before it is restarted
        assert (
            live["periodSeconds"] * live["failureThreshold"]
            > ready["periodSeconds"] * ready["failureThreshold"]
        ), name
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == env["HTTP_PORT"]
        assert annotations["prometheus.io/path"] == "/metrics"


def test_every_container_has_requests_and_limits_and_runs_unprivileged(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    for where, spec in pod_specs(docs):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= resources["requests"].keys(), where
            assert "memory" in resources["limits"], where
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where


def test_the_portal_reaches_each_service_through_its_kubernetes_service(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    services = of_kind(docs, "Service")
    [portal] = of_kind(docs, "Deployment")["portal"]["spec"]["template"]["spec"]["containers"]
    env = container_env(docs, portal)
    for name in EVENT_SERVICES:
        [port] = services[name]["spec"]["ports"]
        assert env[f"{name.upper()}_URL"] == f"http://{name}:{port['port']}", name
    assert env["PORTAL_SECURE_COOKIES"] == "true", "the session cookie must be Secure behind TLS"


def replica_floor(docs: list[Doc], name: str) -> int:
    """The fewest replicas a Deployment runs: its autoscaler's minimum, or its count."""
    autoscaler = of_kind(docs, "HorizontalPodAutoscaler").get(name)
    if autoscaler is not None:
        return int(autoscaler["spec"].get("minReplicas", 1))
    return int(of_kind(docs, "Deployment")[name]["spec"].get("replicas", 1))


def test_a_disruption_budget_per_service_that_keeps_one_replica_in_production(
    rendered: tuple[str, list[Doc]],
) -> None:
    overlay, docs = rendered
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert set(budgets) == set(DEPLOYED)
    for name, budget in budgets.items():
        pod_labels = of_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        # a budget that allows no eviction at all would block every node drain
        assert budget["spec"].get("maxUnavailable") == 1, name
        if overlay == "production":
            assert replica_floor(docs, name) >= 2, f"{name}: one replica is no redundancy"


def consumed_topics(name: str) -> list[str]:
    """The topics the service's consumers subscribe to, from its own app (no I/O)."""
    config = importlib.import_module(f"reelpolicy_{name}.config")
    main = importlib.import_module(f"reelpolicy_{name}.main")
    unused = "postgresql://unused@127.0.0.1/unused"
    settings = settings_for(config.Settings, database_url=unused, bootstrap_servers="127.0.0.1:1")
    found: list[str] = main.create_app(settings).state.runtime.consumed_topics()
    return found


def test_rules_and_notify_autoscale_within_their_topics_partitions(
    rendered: tuple[str, list[Doc]],
) -> None:
    _, docs = rendered
    autoscalers = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(autoscalers) == set(SCALED)
    for name, autoscaler in autoscalers.items():
        spec = autoscaler["spec"]
        assert spec["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": name,
        }
        assert "replicas" not in of_kind(docs, "Deployment")[name]["spec"], (
            f"{name}: a replica count in the Deployment fights the autoscaler on every apply"
        )
        consumed = consumed_topics(name)
        assert consumed, f"{name} consumes nothing?"
        bound = min(topics.partitions(topic) for topic in consumed)
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"] <= bound, (
            f"{name}: replicas {spec['minReplicas']}..{spec['maxReplicas']}, but"
            f" {consumed} have {[topics.partitions(t) for t in consumed]} partitions"
        )
        assert [m["type"] for m in spec["metrics"]] == ["Resource"]
        assert spec["metrics"][0]["resource"]["name"] == "cpu"


def test_the_scaling_signal_and_bounds_are_documented() -> None:
    readme = README.read_text(encoding="utf-8")
    comment = (K8S / "base" / "autoscaling.yaml").read_text(encoding="utf-8")
    for text in (readme, comment):
        assert "CPU" in text
        assert "reelpolicy_consumer_lag" in text
        for topic in (topics.POLICY, topics.REGISTRY, topics.ELIGIBILITY):
            assert f"{topic} ({topics.partitions(topic)}" in text, topic


def test_production_runs_in_its_own_namespace(kubectl: str) -> None:
    done = subprocess.run(
        [kubectl, "kustomize", str(OVERLAYS["production"])], capture_output=True, text=True
    )
    docs = [doc for doc in yaml.safe_load_all(done.stdout) if doc]
    [namespace] = of_kind(docs, "Namespace").keys()
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]


def test_the_readme_says_how_to_deploy_and_migrate() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "kubectl apply -k deploy/k8s/overlays/production" in readme
    assert "kubectl -n reelpolicy wait --for=condition=complete job" in readme
