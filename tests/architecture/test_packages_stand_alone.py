"""The contracts and the policy library install and import without the runtime plumbing.

Platform operators install ``reelpolicy-contracts`` by itself, and ``reelpolicy-policy`` is
pure: importing either must not pull in a database driver, a broker client, a web framework
or the shared plumbing. Each check imports in a fresh interpreter, so nothing another test
imported hides a dependency.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUMBING = (
    "aiokafka",
    "asyncpg",
    "faststream",
    "fastapi",
    "starlette",
    "uvicorn",
    "opentelemetry",
    "prometheus_client",
    "reelpolicy_common",
)


def modules_loaded_by(*modules: str) -> set[str]:
    script = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize(
    "modules",
    [
        (
            "reelpolicy_contracts.events",
            "reelpolicy_contracts.topics",
            "reelpolicy_contracts.subjects",
            "reelpolicy_contracts.ids",
            "reelpolicy_contracts.storable",
        ),
        ("reelpolicy_policy",),
    ],
    ids=["contracts", "policy"],
)
def test_importing_loads_no_runtime_plumbing(modules: tuple[str, ...]) -> None:
    loaded = modules_loaded_by(*modules)
    assert not loaded & set(PLUMBING), sorted(loaded & set(PLUMBING))


def declared(package_dir: str) -> set[str]:
    project = tomllib.loads((ROOT / package_dir / "pyproject.toml").read_text())["project"]
    return {
        dep.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
        for dep in project["dependencies"]
    }


def test_contracts_declare_only_pydantic_and_ids() -> None:
    assert declared("libs/contracts") <= {
        "pydantic",
        "pydantic-core",
        "annotated-types",
        "uuid-utils",
    }


def test_policy_depends_on_contracts_not_on_plumbing() -> None:
    deps = declared("libs/policy")
    assert "reelpolicy-contracts" in deps
    assert "reelpolicy-common" not in deps
