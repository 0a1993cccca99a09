"""Where the published contracts live, and the AsyncAPI parser the tests run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
RELEASED = CONTRACTS / "released"
ASYNCAPI = CONTRACTS / "asyncapi.yaml"
NODE_PACKAGE = Path(__file__).resolve().parent / "asyncapi"
"""package.json + package-lock.json (@asyncapi/parser, pinned) and validate.mjs."""
NODE_CACHE = ROOT / ".tools" / "asyncapi"
"""Where the parser is installed (npm ci), once per lock file (gitignored)."""

INSTALL_NODE = (
    "node (18+) and npm are needed to validate contracts/asyncapi.yaml with the AsyncAPI"
    " parser: apt-get install nodejs npm (.ci/run installs them when missing)"
)


def load_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def asyncapi_validator() -> list[str]:
    """The command that validates AsyncAPI files with @asyncapi/parser, installing the
    pinned parser into .tools/asyncapi when its lock file changed (fails without node)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node, INSTALL_NODE
    assert npm, INSTALL_NODE
    lock = (NODE_PACKAGE / "package-lock.json").read_bytes()
    installed = NODE_CACHE / "package-lock.json"
    ready = (NODE_CACHE / "node_modules" / "@asyncapi" / "parser").is_dir()
    if not (ready and installed.exists() and installed.read_bytes() == lock):
        if NODE_CACHE.exists():
            shutil.rmtree(NODE_CACHE)
        NODE_CACHE.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(NODE_PACKAGE / name, NODE_CACHE / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=NODE_CACHE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (
            f"npm ci of @asyncapi/parser failed:\n{done.stdout}{done.stderr}"
        )
    shutil.copyfile(NODE_PACKAGE / "validate.mjs", NODE_CACHE / "validate.mjs")
    return [node, str(NODE_CACHE / "validate.mjs")]
