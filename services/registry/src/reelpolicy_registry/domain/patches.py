"""The published shape of a merge patch (RFC 7396) of an enterprise or a production.

A patch names only attributes of the record (no other member); each member is the
attribute's own schema, and ``null`` is allowed exactly where removing the member leaves
a valid record (an optional attribute, which becomes unknown or its default). Nested
objects are patched the same way, member by member. The merged record is still
validated whole (:func:`.records.validate_enterprise`), for the rules the schema cannot
state (a credit code's check digit, a region code in GB/T 2260).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from reelpolicy_registry.domain.records import (
    EnterpriseInput,
    MetricsInput,
    OverseasInput,
    ProductionInput,
)


def _without_default(schema: dict[str, Any]) -> None:
    # a patch member has no default: an absent member leaves the attribute as it is
    schema.pop("default", None)


def merge_patch_model(
    model: type[BaseModel],
    *,
    name: str,
    nested: dict[str, type[BaseModel]] | None = None,
    fixed: frozenset[str] = frozenset(),
) -> type[BaseModel]:
    """A model of the merge patches of ``model``; ``nested`` gives the patch model of an
    attribute that is itself an object (patched member by member); ``fixed`` attributes
    cannot be patched (a patch naming one is refused)."""
    members: dict[str, Any] = {}
    for field_name, info in model.model_fields.items():
        if field_name in fixed:
            continue
        annotation: Any = info.annotation
        if nested and field_name in nested:
            annotation = nested[field_name] | None
        elif not info.is_required() and info.default is not None:
            # an attribute with a default other than "unknown" (an empty list): null
            # removes the member, which restores the default
            annotation = annotation | None
        if info.metadata:
            annotation = Annotated[(annotation, *info.metadata)]
        members[field_name] = (
            annotation,
            Field(
                default=None,
                description=info.description,
                json_schema_extra=_without_default,
            ),
        )
    patch: type[BaseModel] = create_model(
        name,
        __config__=ConfigDict(extra="forbid"),
        __doc__=f"A JSON merge patch (RFC 7396) of {model.__name__}'s attributes.",
        **members,
    )
    return patch


OverseasPatch = merge_patch_model(OverseasInput, name="OverseasPatch")
MetricsPatch = merge_patch_model(MetricsInput, name="MetricsPatch")
if TYPE_CHECKING:
    # mypy cannot type a model made at run time; the routes need only a BaseModel
    EnterprisePatch = BaseModel
    ProductionPatch = BaseModel
else:
    EnterprisePatch = merge_patch_model(EnterpriseInput, name="EnterprisePatch")
    ProductionPatch = merge_patch_model(
        ProductionInput,
        name="ProductionPatch",
        nested={"overseas": OverseasPatch, "metrics": MetricsPatch},
        # a production cannot move to another enterprise
        fixed=frozenset({"enterprise_id"}),
    )


def patch_members(patch: BaseModel) -> dict[str, Any]:
    """The members a patch names (an explicit ``null`` included), as JSON."""
    return patch.model_dump(mode="json", exclude_unset=True)
