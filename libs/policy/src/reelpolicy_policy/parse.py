"""Parsing and validation of policy documents; the canonical JSON form.

An invalid document is rejected whole: every problem found is collected and raised as
one :class:`PolicyValidationError` whose ``errors`` are ``{path, message}`` items with
JSON paths (``$.benefits[0].of_field``).
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from reelpolicy_policy.criteria import Errors, node_to_dict, parse_criteria, predicates
from reelpolicy_policy.fields import FieldType, fields_for
from reelpolicy_policy.limits import MAX_DOCUMENT_DEPTH, document_limit_errors
from reelpolicy_policy.model import (
    Policy,
    PolicyDocument,
    PolicyScope,
    PolicyValidationError,
)

JSON_TYPES = frozenset({"application/json", "json", "text/json"})
YAML_TYPES = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "yaml", "yml"}
)


def _loc_path(loc: tuple[int | str, ...]) -> str:
    out = "$"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _check_benefits(doc: PolicyDocument, errors: Errors) -> None:
    seen: list[str] = []
    fields = fields_for(doc.subject)
    for i, b in enumerate(doc.benefits):
        path = f"$.benefits[{i}]"
        if b.id in seen:
            errors.append({"path": f"{path}.id", "message": f"duplicate benefit id {b.id!r}"})
        needs = {
            "percent": b.basis in ("percentage_of_field", "percentage_of_benefit"),
            "of_field": b.basis == "percentage_of_field",
            "of_benefit": b.basis == "percentage_of_benefit",
            "match": b.basis == "matching",
        }
        for attr, needed in needs.items():
            present = getattr(b, attr) is not None
            if needed and not present:
                errors.append({"path": f"{path}.{attr}", "message": f"required for {b.basis}"})
            elif present and not needed and not (attr == "percent" and b.basis == "matching"):
                errors.append(
                    {"path": f"{path}.{attr}", "message": f"not allowed for basis {b.basis}"}
                )
        if b.basis == "fixed" and b.max_amount_cny is None:
            errors.append({"path": f"{path}.max_amount_cny", "message": "fixed needs an amount"})
        if b.basis == "non_monetary" and b.max_amount_cny is not None:
            errors.append({"path": f"{path}.max_amount_cny", "message": "must be null"})
        if b.of_field is not None:
            spec = fields.get(b.of_field)
            if spec is None or spec.type is not FieldType.int:
                errors.append(
                    {
                        "path": f"{path}.of_field",
                        "message": f"expected an integer field of a {doc.subject}, "
                        f"got {b.of_field!r}",
                    }
                )
        if b.of_benefit is not None and b.of_benefit not in seen:
            errors.append(
                {
                    "path": f"{path}.of_benefit",
                    "message": f"expected the id of an earlier benefit, got {b.of_benefit!r}",
                }
            )
        if b.basis == "matching" and doc.subject != "production":
            errors.append({"path": f"{path}.basis", "message": "matching needs a production"})
        seen.append(b.id)
    grouped: set[str] = set()
    for g, group in enumerate(doc.constraints.exclusive if doc.constraints else []):
        for j, bid in enumerate(group):
            p = f"$.constraints.exclusive[{g}][{j}]"
            if bid not in seen:
                errors.append({"path": p, "message": f"unknown benefit id {bid!r}"})
            if bid in grouped:
                errors.append({"path": p, "message": f"{bid!r} already in an exclusive group"})
            grouped.add(bid)


def _check_document(doc: PolicyDocument, errors: Errors) -> None:
    iss = doc.issuer
    if iss.level in ("provincial", "municipal", "district") and iss.region_code is None:
        errors.append({"path": "$.issuer.region_code", "message": f"required for {iss.level}"})
    eff = doc.effective
    if eff.to is not None and eff.to < eff.from_:
        errors.append({"path": "$.effective.to", "message": "must not be before 'from'"})
    _check_benefits(doc, errors)


def region_prefix(code: str) -> str:
    """``310000`` -> ``31``, ``440300`` -> ``4403``, ``310110`` -> ``310110``."""
    while len(code) > 2 and code.endswith("00"):
        code = code[:-2]
    return code


def parse_policy(data: dict[str, Any]) -> Policy:
    """Validate a policy document (a JSON-like dict); raise :class:`PolicyValidationError`."""
    if not isinstance(data, dict):
        raise PolicyValidationError([{"path": "$", "message": "expected an object"}])
    limits = document_limit_errors(data)
    if limits:
        raise PolicyValidationError(limits)
    errors: Errors = []
    try:
        doc = PolicyDocument.model_validate(data)
    except ValidationError as exc:
        for e in exc.errors():
            errors.append({"path": _loc_path(tuple(e["loc"])), "message": e["msg"]})
        subject = data.get("subject")
        if subject in ("enterprise", "production") and "criteria" in data:
            parse_criteria(data["criteria"], "$.criteria", subject, errors)
        raise PolicyValidationError(errors) from None
    tree = parse_criteria(doc.criteria, "$.criteria", doc.subject, errors)
    _check_document(doc, errors)
    if errors:
        raise PolicyValidationError(errors)
    used = [p.field for p in predicates(tree)]
    used += [b.of_field for b in doc.benefits if b.of_field]
    used += ["production.grants" for b in doc.benefits if b.basis == "matching"]
    region = doc.issuer.region_code
    prefixes = None
    if region is not None and doc.issuer.level not in ("national", "platform"):
        prefixes = (region_prefix(region),)
    return Policy(
        document=doc,
        criteria=tree,
        scope=PolicyScope(subject=doc.subject, region_prefixes=prefixes),
        fields=tuple(sorted(set(used))),
    )


def policy_document_dict(policy: Policy) -> dict[str, Any]:
    """The canonical JSON form (stable key set; compare for identical resubmissions)."""
    out = policy.document.model_dump(mode="json", by_alias=True, exclude_none=True)
    out["criteria"] = node_to_dict(policy.criteria)
    for raw, b in zip(out["benefits"], policy.benefits, strict=True):
        raw["max_amount_cny"] = b.max_amount_cny
    return out


class MalformedBodyError(PolicyValidationError):
    """A body that breaks the request schema the APIs publish for a policy document (a
    JSON object, or YAML text): another media type, or JSON text that is not an object.

    The APIs answer it 422; every other refusal is a rule of the policy language (400).
    """


def load_policy_text(text: str | bytes, content_type: str) -> Policy:
    """Parse a JSON or YAML policy document (by MIME type or ``json``/``yaml``).

    Raises :class:`MalformedBodyError` for another media type or JSON text that is not
    a JSON object, :class:`PolicyValidationError` for any other refusal.
    """
    ctype = content_type.split(";")[0].strip().lower()
    if ctype not in JSON_TYPES | YAML_TYPES:
        msg = f"unsupported content type {content_type!r}; expected JSON or YAML"
        raise MalformedBodyError([{"path": "$", "message": msg}])
    try:
        data = json.loads(text) if ctype in JSON_TYPES else yaml.safe_load(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # not JSON text at all
        refusal = MalformedBodyError if ctype in JSON_TYPES else PolicyValidationError
        raise refusal([{"path": "$", "message": f"not parseable: {exc}"}]) from None
    # ValueError: also an integer longer than Python converts (4,300 digits)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicyValidationError([{"path": "$", "message": f"not parseable: {exc}"}]) from None
    except RecursionError:  # the parsers recurse per level: far past the depth limit
        message = f"nested deeper than {MAX_DOCUMENT_DEPTH} levels (MAX_DOCUMENT_DEPTH)"
        raise PolicyValidationError([{"path": "$", "message": message}]) from None
    if ctype in JSON_TYPES and not isinstance(data, dict):
        message = f"expected a JSON object, not {type(data).__name__}"
        raise MalformedBodyError([{"path": "$", "message": message}])
    return parse_policy(data)
