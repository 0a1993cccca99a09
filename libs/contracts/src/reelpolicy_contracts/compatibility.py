"""Schema evolution rules, as pure functions over JSON Schemas (``docs/events.md``).

Within one ``schema_version`` of an event type, a consumer built against the released
schema must read every later event of that version. So, comparing the released schema
with the current one, field by field (nested objects and array items included):

- a field removed: **breaking** (a consumer reads it);
- a field retyped (its set of JSON types, ``const`` or ``enum`` values changed, widened
  or narrowed): **breaking** (a consumer parses it as it was; a replay of old records
  must still validate);
- an optional field made required, or a new required field: **breaking** (records
  already on the topic lack it);
- a new optional field: fine (consumers ignore fields they do not know).

Constraints (``minimum``, ``maxLength``, ``pattern``, ``format``) are not compared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class _Field:
    kinds: frozenset[str]
    required: bool


def _resolve(node: Schema, root: Schema) -> Schema:
    seen = 0
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, not {ref!r}")
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        seen += 1
        if seen > 64:
            raise ValueError(f"$ref cycle at {ref}")
    return node


def _branches(node: Schema, root: Schema) -> list[Schema]:
    """The alternatives a value of ``node`` may take (``anyOf``/``oneOf`` flattened)."""
    node = _resolve(node, root)
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            return [b for sub in node[keyword] for b in _branches(sub, root)]
    if "allOf" in node and len(node["allOf"]) == 1:
        return _branches(node["allOf"][0], root)
    return [node]


def _kinds(branch: Schema) -> set[str]:
    if "const" in branch:
        return {"const " + json.dumps(branch["const"], sort_keys=True)}
    if "enum" in branch:
        return {"enum " + json.dumps(v, sort_keys=True) for v in branch["enum"]}
    declared = branch.get("type")
    if declared is None:
        return {"any"}
    if isinstance(declared, list):
        return {str(t) for t in declared}
    return {str(declared)}


def _walk(node: Schema, root: Schema, path: str, out: dict[str, _Field]) -> None:
    for branch in _branches(node, root):
        properties = branch.get("properties")
        if isinstance(properties, Mapping):
            required = set(branch.get("required", ()))
            for name, sub in properties.items():
                field_path = f"{path}.{name}" if path else name
                kinds = {k for b in _branches(sub, root) for k in _kinds(b)}
                known = out.get(field_path)
                if known is not None:  # the same field in two object branches
                    kinds |= known.kinds
                out[field_path] = _Field(frozenset(kinds), name in required)
                _walk(sub, root, field_path, out)
        items = branch.get("items")
        if isinstance(items, Mapping):
            item_path = f"{path}[]"
            out[item_path] = _Field(
                frozenset(k for b in _branches(items, root) for k in _kinds(b)), True
            )
            _walk(items, root, item_path, out)


def fields(schema: Schema) -> dict[str, tuple[frozenset[str], bool]]:
    """Field path (``payload.attributes.name``, ``missing_fields[]``) -> (the JSON kinds
    its value may take, whether it is required in its object)."""
    out: dict[str, _Field] = {}
    _walk(schema, schema, "", out)
    return {path: (f.kinds, f.required) for path, f in out.items()}


def _parent(path: str) -> str:
    if path.endswith("[]"):
        return path[:-2]
    return path.rpartition(".")[0]


def breaking_changes(released: Schema, current: Schema) -> list[str]:
    """What breaks a consumer of ``released`` in ``current``, one line per field (empty:
    compatible)."""
    old, new = fields(released), fields(current)
    problems: list[str] = []
    for path, (kinds, required) in sorted(old.items()):
        if path not in new:
            problems.append(f"{path}: removed")
            continue
        new_kinds, new_required = new[path]
        if new_kinds != kinds:
            problems.append(f"{path}: retyped from {sorted(kinds)} to {sorted(new_kinds)}")
        if new_required and not required:
            problems.append(f"{path}: was optional, now required")
    for path, (_, required) in sorted(new.items()):
        parent = _parent(path)
        if path not in old and required and (parent == "" or parent in old):
            problems.append(f"{path}: added as required")
    return problems


def release_problems(
    current: Mapping[str, int], released: Mapping[str, set[int]]
) -> dict[str, str]:
    """Event type -> why its release is missing or off, given the current
    ``schema_version`` of each type and the versions in ``contracts/released/``."""
    problems: dict[str, str] = {}
    for event_type, version in sorted(current.items()):
        versions = released.get(event_type, set())
        if version in versions:
            continue
        if versions and version < max(versions):
            problems[event_type] = (
                f"schema_version {version} is older than the released v{max(versions)}"
            )
        else:
            problems[event_type] = (
                f"v{version} is not released: run `make contracts-release` (it copies the"
                " new schema into contracts/released/)"
            )
    return problems
