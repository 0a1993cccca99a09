"""Static checks of the container deployment: compose.yaml and deploy/.

No Docker engine and no network: the files are parsed and checked against the Compose
specification and against the code they deploy (topics, settings, ports).
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml
from ops_pack import settings_env

from reelpolicy_contracts import topics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DEPLOY = ROOT / "deploy"
# The Compose Specification's JSON Schema (compose-spec/compose-spec, schema/compose-spec.json)
COMPOSE_SPEC = Path(__file__).with_name("compose-spec.json")

KAFKA_SERVICES = ("registry", "ingest", "rules", "notify")
APP_SERVICES = (*KAFKA_SERVICES, "portal")
"""The portal is an app service without a broker: it knows the others' HTTP APIs only."""
SCALABLE = ("rules", "notify")
DB_PASSWORD_VARS = {name: f"{name.upper()}_DB_PASSWORD" for name in APP_SERVICES}
"""Each service's own database role's password (the init script reads them too)."""
SECRET_VARS = (
    "REELPOLICY_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "NOTIFY_SEALING_KEYS",
    "PORTAL_SESSION_SECRET",
    "PORTAL_KEY_ENCRYPTION_KEYS",
    "GRAFANA_ADMIN_PASSWORD",
    *DB_PASSWORD_VARS.values(),
)
COMPLETED = "service_completed_successfully"
HEALTHY = "service_healthy"
CONDITIONS = {HEALTHY, COMPLETED, "service_started"}

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?message}, ${VAR?message}; not $${...}.
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}"
)


# ---------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a mapping, whichever syntax compose.yaml uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(service: dict[str, Any]) -> dict[str, Any]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):  # short syntax: no conditions
        return {name: {} for name in deps}
    return deps


def command_text(service: dict[str, Any]) -> str:
    parts: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key) or []
        parts.extend([value] if isinstance(value, str) else [str(v) for v in value])
    return "\n".join(parts)


def strings(node: Any) -> Iterator[str]:
    """Every string value (and key) in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def one_shot_jobs(services: dict[str, dict[str, Any]]) -> set[str]:
    """Services run to completion: restart "no" and awaited with service_completed_successfully."""
    awaited = {
        target
        for service in services.values()
        for target, spec in depends_on(service).items()
        if spec.get("condition") == COMPLETED
    }
    return {name for name in awaited if str(services[name].get("restart", "no")) == "no"}


def migration_job(name: str) -> str:
    return f"{name}-migrate"


def parse_url(value: str) -> Any:
    """urlsplit of a compose value, each ${VAR...} read as the bare name VAR."""
    return urlsplit(INTERPOLATION.sub(lambda match: match["var"], value))


def database_name(url: str) -> str:
    return parse_url(url).path.lstrip("/")


def published_host_ports(service: dict[str, Any]) -> Iterator[tuple[int, str]]:
    """(host port, protocol) for every port the service publishes, ranges expanded."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published, protocol = entry.get("published"), entry.get("protocol", "tcp")
            if published is None:
                continue
            host = str(published)
        else:
            spec, _, protocol = str(entry).partition("/")
            protocol = protocol or "tcp"
            pieces = spec.rsplit(":", 2)
            host = pieces[-2] if len(pieces) > 1 else ""
            if not host:  # container port only, or "ip::port": an ephemeral host port
                continue
        low, _, high = host.partition("-")
        for port in range(int(low), int(high or low) + 1):
            yield port, protocol


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


# ---------------------------------------------------------------- the compose file


def test_compose_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(COMPOSE_SPEC.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def test_every_service_has_an_image_or_a_build(services: dict[str, dict[str, Any]]) -> None:
    missing = [name for name, svc in services.items() if "image" not in svc and "build" not in svc]
    assert not missing, f"services with neither image nor build: {missing}"


def test_every_service_has_a_healthcheck_or_is_a_one_shot_job(
    services: dict[str, dict[str, Any]],
) -> None:
    jobs = one_shot_jobs(services)
    for name, service in services.items():
        if name in jobs:
            assert "healthcheck" not in service, f"one-shot job {name} needs no healthcheck"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck and is not a one-shot job"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check.get("test"), f"{name}'s healthcheck has no test"


def test_depends_on_targets_exist_and_use_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    jobs = one_shot_jobs(services)
    for name, service in services.items():
        for target, spec in depends_on(service).items():
            assert target in services, f"{name} depends on unknown service {target}"
            condition = spec.get("condition")
            assert condition in CONDITIONS, f"{name} -> {target} has no usable condition"
            if condition == HEALTHY:
                assert "healthcheck" in services[target], f"{target} can never become healthy"
            if condition == COMPLETED:
                assert target in jobs, f"{target} is awaited to complete but restarts"


@pytest.mark.parametrize("name", KAFKA_SERVICES)
def test_app_service_waits_for_kafka_postgres_topics_and_its_migrations(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    deps = {target: spec.get("condition") for target, spec in depends_on(service).items()}
    assert deps.get("kafka") == HEALTHY
    assert deps.get("postgres") == HEALTHY
    assert deps.get(migration_job(name)) == COMPLETED
    topic_jobs = [
        job for job in one_shot_jobs(services) if "kafka-topics.sh" in command_text(services[job])
    ]
    assert topic_jobs, "no one-shot job creates the Kafka topics"
    assert all(deps.get(job) == COMPLETED for job in topic_jobs)
    assert service.get("command") in (None, [f"reelpolicy-{name}", "serve"])
    assert "/healthz" in json.dumps(service["healthcheck"]["test"])


def test_the_portal_waits_for_its_migrations_and_reaches_the_services_by_name(
    services: dict[str, dict[str, Any]],
) -> None:
    portal = services["portal"]
    deps = {target: spec.get("condition") for target, spec in depends_on(portal).items()}
    assert deps.get("postgres") == HEALTHY
    assert deps.get(migration_job("portal")) == COMPLETED
    assert "kafka" not in deps, "the portal consumes and publishes no event"
    env = environment(portal)
    assert "KAFKA_BOOTSTRAP_SERVERS" not in env
    for name in KAFKA_SERVICES:
        assert deps.get(name) == HEALTHY, f"the portal starts before {name} answers"
        port = environment(services[name])["HTTP_PORT"]
        assert env[f"{name.upper()}_URL"] == f"http://{name}:{port}"
    assert portal.get("command") == ["reelpolicy-portal", "serve"]
    assert "/healthz" in json.dumps(portal["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_migration_job_runs_the_service_migrate_command(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    job = services[migration_job(name)]
    service = services[name]
    assert job.get("command") == [f"reelpolicy-{name}", "migrate"]
    assert str(job.get("restart")) == "no"
    assert job.get("image") == service.get("image"), "the job must run the service's image"
    assert job.get("build") == service.get("build")
    assert environment(job) == environment(service), "the job must migrate the service's database"
    assert depends_on(job).get("postgres", {}).get("condition") == HEALTHY


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_is_built_from_the_shared_dockerfile(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    build = services[name]["build"]
    assert build["dockerfile"] == "deploy/Dockerfile"
    assert (ROOT / build.get("context", ".") / build["dockerfile"]).is_file()
    assert build["args"]["SERVICE"] == name


def test_topic_job_creates_exactly_the_contract_topics(
    services: dict[str, dict[str, Any]],
) -> None:
    jobs = [
        name
        for name in one_shot_jobs(services)
        if "kafka-topics.sh" in command_text(services[name])
    ]
    assert len(jobs) == 1, f"expected one topic job, found {jobs}"
    script = command_text(services[jobs[0]])
    created: dict[str, int] = {}
    for line in script.splitlines():
        words = shlex.split(line.replace("$$", "$"))
        if "--topic" not in words:
            continue
        topic = words[words.index("--topic") + 1]
        assert topic not in created, f"{topic} created twice"
        created[topic] = int(words[words.index("--partitions") + 1])
    assert "--if-not-exists" in script, "re-running the job must not fail on existing topics"
    assert created == {topic: topics.partitions(topic) for topic in topics.ALL_TOPICS}


def test_topic_job_sets_every_topics_cleanup_policy_and_retention(
    services: dict[str, dict[str, Any]],
) -> None:
    """Each topic is created with, and then altered to, exactly the configs
    ``topics.config`` gives it (what ``ensure_topics`` uses): an explicit cleanup policy
    and retention, so a topic created by an older version gets them too."""
    script = command_text(services["kafka-topics"])
    created: dict[str, dict[str, str]] = {}
    altered: dict[str, dict[str, str]] = {}
    for line in script.splitlines():
        words = shlex.split(line.replace("$$", "$"))
        if "--topic" in words and "--create" not in words and "$opts" in words:
            configs = [words[i + 1] for i, w in enumerate(words) if w == "--config"]
            created[words[words.index("--topic") + 1]] = dict(c.split("=", 1) for c in configs)
        elif "--alter" in words:
            assert words[words.index("--entity-type") + 1] == "topics"
            pairs = words[words.index("--add-config") + 1].split(",")
            altered[words[words.index("--entity-name") + 1]] = dict(p.split("=", 1) for p in pairs)
    expected = {topic: topics.config(topic) for topic in topics.ALL_TOPICS}
    assert created == expected
    assert altered == expected
    for topic, config in expected.items():
        assert {"cleanup.policy", "retention.ms"} <= config.keys(), topic
    assert expected[topics.SNAPSHOTS]["cleanup.policy"] == "compact"
    for topic in topics.MAIN_TOPICS:
        assert expected[topic]["cleanup.policy"] == "delete"
        dead = expected[topics.dead_letter(topic)]
        assert int(dead["retention.ms"]) > int(expected[topic]["retention.ms"])


def test_kafka_is_kraft_and_healthchecked_with_its_own_scripts(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the topic job"
    assert "/opt/kafka/bin/" in json.dumps(kafka["healthcheck"]["test"])
    for name in KAFKA_SERVICES:
        assert environment(services[name])["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert environment(services[name])["KAFKA_ENABLE_IDEMPOTENCE"] == "true"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_service_environment_provides_every_setting_it_requires(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    declared = settings_env(name)
    for service_name in (name, migration_job(name)):
        env = {key.upper() for key in environment(services[service_name])}
        missing = sorted(key for key, required in declared.items() if required and key not in env)
        assert not missing, f"{service_name} lacks required settings {missing}"
        unknown = sorted(env - declared.keys())
        assert not unknown, f"{service_name} sets {unknown}, which its Settings never reads"


def test_no_two_services_publish_the_same_host_port(
    services: dict[str, dict[str, Any]],
) -> None:
    owner: dict[tuple[int, str], str] = {}
    for name, service in services.items():
        for port in published_host_ports(service):
            assert port not in owner, f"{name} and {owner[port]} both publish {port}"
            owner[port] = name


@pytest.mark.parametrize("name", SCALABLE)
def test_scalable_service_has_no_fixed_name_or_single_host_port(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert "container_name" not in service, "a fixed container name forbids --scale"
    ports = list(published_host_ports(service))
    assert not ports or len(ports) >= 3, f"{name} publishes {ports}: replicas would collide"


def test_secrets_come_from_the_environment_without_defaults(compose: dict[str, Any]) -> None:
    seen: set[str] = set()
    for text in strings(compose):
        for match in INTERPOLATION.finditer(text):
            if match["var"] not in SECRET_VARS:
                continue
            seen.add(match["var"])
            assert match["op"] == ":?", f"{match[0]}: a secret needs ${{VAR:?message}}"
            assert match["arg"].strip(), f"{match[0]}: say what to set"
    assert seen == set(SECRET_VARS)
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if re.search(r"SECRET|PASSWORD|TOKEN|SEALING_KEYS", key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), (
                    f"{name}.{key} must come from the environment, not {value!r}"
                )
            if key == "DATABASE_URL":
                service = name.removesuffix("-migrate")
                var = DB_PASSWORD_VARS[service]
                assert re.match(rf"postgresql://[^:/@]+:\$\{{{var}:\?[^}}]+\}}@", value), (
                    f"{name}'s DATABASE_URL must interpolate {var}, its own role's password"
                )


def test_postgres_init_script_creates_every_service_database(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres = services["postgres"]
    mounts = [str(volume) for volume in postgres.get("volumes", [])]
    assert "./deploy/postgres:/docker-entrypoint-initdb.d:ro" in mounts
    scripts = sorted((DEPLOY / "postgres").glob("*.sql")) + sorted(
        (DEPLOY / "postgres").glob("*.sh")
    )
    assert scripts, "deploy/postgres has no init script"
    created = {
        name.lower()
        for script in scripts
        for name in re.findall(
            r"CREATE\s+DATABASE\s+\"?(\w+)\"?", script.read_text(encoding="utf-8"), re.I
        )
    }
    urls = {
        name: environment(service)["DATABASE_URL"]
        for name, service in services.items()
        if "DATABASE_URL" in environment(service)
    }
    wanted = {database_name(url) for url in urls.values()}
    assert wanted == {f"reelpolicy_{name}" for name in APP_SERVICES}
    assert created == wanted
    for name, url in urls.items():
        assert parse_url(url).hostname == "postgres", name


def published_host_ips(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host address, the entry) for every port mapping the service publishes ("" for
    all interfaces, what a mapping without an address means)."""
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            yield str(entry.get("host_ip", "")), str(entry)
            continue
        spec = str(entry).partition("/")[0]
        pieces = spec.rsplit(":", 2)
        yield (pieces[0] if len(pieces) == 3 else ""), str(entry)


def test_every_published_port_is_bound_to_localhost(
    services: dict[str, dict[str, Any]],
) -> None:
    """Nothing (Kafka's PLAINTEXT listener, Jaeger, Prometheus, the mail UI, the APIs) is
    reachable from other machines unless an operator opens it (deploy/runbook.md)."""
    published = 0
    for name, service in services.items():
        for host_ip, entry in published_host_ips(service):
            published += 1
            assert host_ip == "127.0.0.1", f"{name} publishes {entry!r} on every interface"
    assert published, "compose publishes no port at all: the check would be empty"
    for name in ("kafka", "jaeger", "prometheus", "grafana", "mailpit"):
        assert list(published_host_ips(services[name])), f"{name} publishes nothing"


def test_each_service_logs_in_to_postgres_as_its_own_role(
    services: dict[str, dict[str, Any]],
) -> None:
    users = {}
    for name in APP_SERVICES:
        for job in (name, migration_job(name)):
            url = parse_url(environment(services[job])["DATABASE_URL"])
            assert url.username == f"reelpolicy_{name}", job
            assert url.password == DB_PASSWORD_VARS[name], job
        users[name] = url.username
    assert len(set(users.values())) == len(APP_SERVICES)
    superuser = environment(services["postgres"])["POSTGRES_USER"]
    assert superuser not in users.values(), "the superuser serves no service"
    postgres_env = environment(services["postgres"])
    for var in DB_PASSWORD_VARS.values():
        assert postgres_env.get(var, "").startswith(f"${{{var}:?"), f"the init script needs {var}"

    script = (DEPLOY / "postgres" / "10-create-databases.sql").read_text(encoding="utf-8")
    for name, user in users.items():
        database = f"reelpolicy_{name}"
        assert re.search(rf"^\\getenv\s+(\w+)\s+{DB_PASSWORD_VARS[name]}$", script, re.M)
        assert re.search(rf"^CREATE ROLE {user} LOGIN PASSWORD :'\w+';$", script, re.M), user
        assert re.search(rf"^CREATE DATABASE {database} OWNER {user};$", script, re.M), user
        assert re.search(rf"^REVOKE ALL ON DATABASE {database} FROM PUBLIC;$", script, re.M)
    assert len(re.findall(r"\bOWNER\b", script)) == len(APP_SERVICES), "one database each"


KAFKA_SECURITY_VARS = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CA_FILE",
)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_kafka_security_settings_are_read_and_documented(name: str) -> None:
    declared = settings_env(name)
    runbook = (DEPLOY / "runbook.md").read_text(encoding="utf-8")
    for var in KAFKA_SECURITY_VARS:
        assert declared.get(var) is False, f"{name} must read {var} (optional)"
        assert f"`{var}`" in runbook, f"deploy/runbook.md must document {var}"


# ---------------------------------------------------------------- deploy/


def test_dockerfile_caches_dependencies_and_runs_as_non_root() -> None:
    instructions = dockerfile_instructions()
    text = [f"{keyword} {args}" for keyword, args in instructions]
    keywords = [keyword for keyword, _ in instructions]

    assert ("ARG", "SERVICE") in instructions
    assert instructions[0] == ("FROM", "python:3.11-slim")

    def first(predicate: Any) -> int:
        return next(i for i, line in enumerate(text) if predicate(line))

    lock_copy = first(lambda line: line.startswith("COPY ") and "uv.lock" in line)
    deps_sync = first(
        lambda line: (
            line.startswith("RUN ")
            and "uv sync" in line
            and "--frozen" in line
            and "--no-install-workspace" in line
            and "reelpolicy-$SERVICE" in line
        )
    )
    source_copy = first(
        lambda line: (
            line.startswith("COPY ")
            and "--from" not in line
            and not all(src.endswith(("pyproject.toml", "uv.lock")) for src in line.split()[1:-1])
        )
    )
    assert lock_copy < deps_sync < source_copy, "dependencies must be a layer before the source"

    users = [args for keyword, args in instructions if keyword == "USER"]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert keywords.index("USER") < keywords.index("CMD")

    healthcheck = next(args for keyword, args in instructions if keyword == "HEALTHCHECK")
    assert "urllib" in healthcheck
    assert "/healthz" in healthcheck


def test_dockerfile_gives_uv_every_workspace_member_before_the_dependency_sync() -> None:
    """uv reads the whole workspace to sync one package: a member whose pyproject the
    image lacks fails the build."""
    members = {
        str(path.relative_to(ROOT))
        for pattern in (
            "libs/*/pyproject.toml",
            "services/*/pyproject.toml",
            "tools/*/pyproject.toml",
        )
        for path in ROOT.glob(pattern)
    }
    instructions = dockerfile_instructions()
    sync = next(
        i
        for i, (keyword, args) in enumerate(instructions)
        if keyword == "RUN" and "uv sync" in args
    )
    copied = {
        source
        for keyword, args in instructions[:sync]
        if keyword == "COPY"
        for source in args.split()[:-1]
    }
    assert members <= copied, sorted(members - copied)


def test_prometheus_scrapes_every_replica_of_every_app_service(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in APP_SERVICES:
        port = int(environment(services[name])["HTTP_PORT"])
        job = jobs.get(name)
        assert job, f"no scrape job for {name}"
        assert job.get("metrics_path", "/metrics") == "/metrics"
        discovered = [
            sd
            for sd in job.get("dns_sd_configs", [])
            if name in sd["names"] and sd.get("type") == "A" and sd.get("port") == port
        ]
        assert discovered, f"{name} must be found by DNS (type A, port {port}) so replicas count"
    prometheus = services["prometheus"]
    assert any("./deploy/prometheus.yml:" in str(v) for v in prometheus.get("volumes", []))


def test_otel_collector_receives_otlp_and_exports_to_jaeger(
    services: dict[str, dict[str, Any]],
) -> None:
    config = yaml.safe_load((DEPLOY / "otel-collector.yaml").read_text(encoding="utf-8"))
    protocols = config["receivers"]["otlp"]["protocols"]
    assert {"grpc", "http"} <= protocols.keys()

    to_jaeger = [
        name
        for name, exporter in config["exporters"].items()
        if name.split("/")[0] in {"otlp", "otlphttp"}
        and urlsplit("//" + exporter["endpoint"].split("://")[-1]).hostname == "jaeger"
    ]
    assert to_jaeger, "no OTLP exporter to jaeger"
    assert "jaeger" in services
    traces = config["service"]["pipelines"]["traces"]
    assert "otlp" in traces["receivers"]
    assert set(to_jaeger) & set(traces["exporters"])

    collector = services["otel-collector"]
    assert any("./deploy/otel-collector.yaml:" in str(v) for v in collector.get("volumes", []))
    http_port = urlsplit("//" + protocols["http"]["endpoint"]).port
    for name in APP_SERVICES:
        endpoint = urlsplit(environment(services[name])["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert endpoint.scheme == "http"
        assert endpoint.hostname == "otel-collector"
        assert endpoint.port == http_port, "services export OTLP/HTTP"


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> the repository path mounted there (bind mounts of ./ only)."""
    mounts: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if source.startswith("./"):
            mounts[rest.split(":")[0]] = ROOT / source
    return mounts


def in_container(mounts: dict[str, Path], path: str) -> Path | None:
    """The repository file a container path shows, through the bind mounts; None if
    no mount covers it."""
    for target, source in sorted(mounts.items(), key=lambda m: -len(m[0])):
        if path == target:
            return source
        if path.startswith(target.rstrip("/") + "/"):
            return source / path[len(target.rstrip("/")) + 1 :]
    return None


def test_prometheus_loads_the_alert_rules_compose_mounts(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    mounts = bind_mounts(prometheus)
    config_path = next(
        arg.split("=", 1)[1] for arg in prometheus["command"] if arg.startswith("--config.file=")
    )
    assert in_container(mounts, config_path) == DEPLOY / "prometheus.yml"
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    rule_files = config.get("rule_files") or []
    assert rule_files, "prometheus.yml loads no alert rules"
    for rule_file in rule_files:
        path = str(Path(config_path).parent / rule_file)
        source = in_container(mounts, path)
        assert source is not None, f"{path} is not mounted into the prometheus container"
        assert source == DEPLOY / "prometheus" / "alerts.yml", source
        assert source.is_file()


def test_grafana_is_provisioned_with_prometheus_and_the_dashboards(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = services["grafana"]
    image, _, tag = grafana["image"].partition(":")
    assert image.startswith("grafana/")
    assert tag, "pin Grafana's image"
    assert tag != "latest", "pin Grafana's image"
    env = environment(grafana)
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert depends_on(grafana)["prometheus"]["condition"] == HEALTHY

    mounts = bind_mounts(grafana)
    assert mounts.get("/etc/grafana/provisioning") == DEPLOY / "grafana" / "provisioning"
    sources = sorted((DEPLOY / "grafana" / "provisioning" / "datasources").glob("*.yml"))
    datasources = [
        source
        for path in sources
        for source in yaml.safe_load(path.read_text(encoding="utf-8"))["datasources"]
    ]
    [prometheus] = [d for d in datasources if d["type"] == "prometheus"]
    url = urlsplit(prometheus["url"])
    assert url.hostname == "prometheus"
    assert url.hostname in services
    assert any(str(p).endswith(f":{url.port}") for p in services["prometheus"]["ports"])

    providers = [
        provider
        for path in sorted((DEPLOY / "grafana" / "provisioning" / "dashboards").glob("*.yml"))
        for provider in yaml.safe_load(path.read_text(encoding="utf-8"))["providers"]
    ]
    assert providers, "no dashboard provider"
    boards = []
    for provider in providers:
        folder = in_container(mounts, provider["options"]["path"])
        assert folder == DEPLOY / "grafana" / "dashboards", provider
        boards += sorted(folder.glob("*.json"))
    assert boards, "no dashboard is provisioned"
    home = in_container(mounts, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home in boards
    for board in boards:
        data = json.loads(board.read_text(encoding="utf-8"))
        used = {
            node["uid"]
            for node in _walk(data)
            if isinstance(node, dict) and node.get("type") == "prometheus" and "uid" in node
        }
        assert used == {prometheus["uid"]}, f"{board.name} names datasources {used}"


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
