"""Loading the policy catalog (``catalog/*.yaml``)."""

from __future__ import annotations

from pathlib import Path

from reelpolicy_policy.model import Policy, PolicyValidationError
from reelpolicy_policy.parse import load_policy_text


def load_catalog(path: str | Path) -> list[Policy]:
    """Every ``*.yaml`` / ``*.yml`` / ``*.json`` document under ``path``, sorted by id.

    Raises :class:`PolicyValidationError` (paths prefixed by the file name) on the
    first invalid file, and on duplicate ids.
    """
    root = Path(path)
    files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    policies: dict[str, Policy] = {}
    for f in files:
        ctype = "json" if f.suffix == ".json" else "yaml"
        try:
            policy = load_policy_text(f.read_text(encoding="utf-8"), ctype)
        except PolicyValidationError as exc:
            raise PolicyValidationError(
                [{"path": f"{f.name}:{e['path']}", "message": e["message"]} for e in exc.errors]
            ) from None
        if policy.id in policies:
            raise PolicyValidationError([{"path": f"{f.name}:$.id", "message": "duplicate id"}])
        policies[policy.id] = policy
    return [policies[k] for k in sorted(policies)]
