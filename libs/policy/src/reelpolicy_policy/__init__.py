"""reelpolicy_policy: the policy language and the eligibility engine (pure, no I/O).

Entry points for services:

* ``parse_policy(data)`` / ``load_policy_text(text, content_type)`` -> :class:`Policy`
  (raise :class:`PolicyValidationError` with ``errors = [{path, message}]``)
* ``policy_document_dict(policy)``: canonical JSON form; ``policy_json_schema()``
* ``evaluate(policy, subject, *, today)`` -> :class:`Result`; ``may_apply(policy, values,
  *, today)``: whether it could be anything but ineligible (no trace, cheap)
* ``subjects_to_frame(subjects)`` + ``evaluate_columnar(policies, frame, *, today)``
* ``apply_stacking(results, *, policies)``, ``allocate_fund(results, *, policies)``
* ``load_catalog(path)``; ``to_cel(policy)`` (CEL translation)
"""

from reelpolicy_policy.catalog import load_catalog
from reelpolicy_policy.cel_export import cel_context, to_cel
from reelpolicy_policy.columnar import STATUS_NAMES, ColumnarResult, evaluate_columnar
from reelpolicy_policy.constraints import (
    FundAllocation,
    FundReport,
    allocate_fund,
    apply_stacking,
    apply_stacking_frame,
)
from reelpolicy_policy.evaluate import (
    Result,
    evaluate,
    evaluate_values,
    may_apply,
    subject_values,
)
from reelpolicy_policy.fields import FIELDS, FieldSpec, FieldType, Subject, flatten_subject
from reelpolicy_policy.frame import frame_schema, subjects_to_frame
from reelpolicy_policy.model import Policy, PolicyScope, PolicyValidationError
from reelpolicy_policy.parse import (
    MalformedBodyError,
    load_policy_text,
    parse_policy,
    policy_document_dict,
)
from reelpolicy_policy.schema import policy_json_schema

__all__ = [
    "FIELDS",
    "STATUS_NAMES",
    "ColumnarResult",
    "FieldSpec",
    "FieldType",
    "FundAllocation",
    "FundReport",
    "MalformedBodyError",
    "Policy",
    "PolicyScope",
    "PolicyValidationError",
    "Result",
    "Subject",
    "allocate_fund",
    "apply_stacking",
    "apply_stacking_frame",
    "cel_context",
    "evaluate",
    "evaluate_columnar",
    "evaluate_values",
    "flatten_subject",
    "frame_schema",
    "load_catalog",
    "load_policy_text",
    "may_apply",
    "parse_policy",
    "policy_document_dict",
    "policy_json_schema",
    "subject_values",
    "subjects_to_frame",
    "to_cel",
]
