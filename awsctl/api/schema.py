"""What every CRD model shares: the `Model` base whose fields are declared once (type, default,
limits, description), the parse that turns pydantic's errors into a `SpecError` naming the field,
and the pass that turns pydantic's JSON schema into a Kubernetes structural schema."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Required, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from 3.12

from awsctl.api import GROUP, VERSION

__all__ = [
    "Condition",
    "Conditions",
    "Int64",
    "IntOrString",
    "Model",
    "SpecError",
    "crd",
    "object_schema",
    "parse",
    "structural",
]


class SpecError(ValueError):
    """Bad input in a spec; `field` names the offending path for the condition and the log."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def cel(*rules: tuple[str, str]) -> ConfigDict:
    """CEL rules on an object: what one field's limits cannot say."""
    return ConfigDict(json_schema_extra={"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]})


class Model(BaseModel):
    """A CRD object's fields, camelCase on the wire. Strict: "5" is not a number, as in the apiserver."""

    model_config = ConfigDict(strict=True, frozen=True, alias_generator=to_camel)


INT_OR_STRING = {"x-kubernetes-int-or-string": True}
IntOrString = Annotated[int | str, Field(json_schema_extra=INT_OR_STRING)]
Int64 = Annotated[int, Field(json_schema_extra={"format": "int64"})]

M = TypeVar("M", bound=Model)


def parse(model: type[M], raw: Mapping[str, Any], root: str = "spec") -> M:
    """The model from a spec as stored, or a SpecError naming the first bad field (`spec.a.b[0]`)."""
    plain = _plain(raw)
    try:
        return model.model_validate(plain)
    except ValidationError as err:
        first = err.errors()[0]
        where = _path(plain, first["loc"], root)
        if first["type"] == "missing":
            raise SpecError(where, "is required") from None
        msg = first["msg"]
        said = (
            f"{first['input']!r} {msg[len('Input ') :]}" if msg.startswith("Input ") else f"{msg}: {first['input']!r}"
        )
        raise SpecError(where, said) from None


def _plain(value: Any) -> Any:
    """kopf hands out mapping views; strict validation wants plain dicts and lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _path(raw: Any, loc: tuple[int | str, ...], root: str) -> str:
    """pydantic's error location as a field path. Steps that are not in the document (the member
    tags of a union such as int | str) are left out; a missing field is named last."""
    out, node = root, raw
    for i, step in enumerate(loc):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and step < len(node):
            node = node[step]
        elif isinstance(node, dict) and i == len(loc) - 1:
            node = None  # a missing field
        else:
            continue
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out


# -- the structural schema ---------------------------------------------------------------------
_ORDER = (
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "pattern",
    "nullable",
    "description",
    "required",
    "x-kubernetes-validations",
    "properties",
    "items",
    "additionalProperties",
)


def structural(schema: Mapping[str, Any], *, nullable: bool = False) -> dict[str, Any]:
    """pydantic's JSON schema as Kubernetes wants it: `$defs` inlined, no titles, `X | None` as X
    (`nullable` for status, where None clears a key), int | str as int-or-string, free-form objects
    as preserve-unknown-fields."""
    defs = schema.get("$defs", {})

    def walk(node: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref":
                out.update(walk(defs[value.rsplit("/", 1)[-1]]))
            elif key == "anyOf":
                members = [m for m in value if m.get("type") != "null"]
                if len(members) < len(value) and nullable:
                    out["nullable"] = True
                if len(members) == 1:
                    out.update(walk(members[0]))
                elif {m.get("type") for m in members} in ({"integer", "string"}, {"number", "string"}):
                    out.update(INT_OR_STRING)
                else:
                    raise ValueError(f"no structural schema for anyOf {value}")
            elif key == "const":
                out["enum"] = [value]
            elif key in ("properties", "$defs"):
                if key == "properties":
                    out[key] = {name: walk(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
                out[key] = walk(value)
            elif key == "additionalProperties" and value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif key == "title" or (key == "default" and value is None):
                continue
            else:
                out[key] = value
        if out.get("type") == "object" and not ({"properties", "additionalProperties"} & set(out)):
            out["x-kubernetes-preserve-unknown-fields"] = True
        if out.get("x-kubernetes-int-or-string"):
            out.pop("type", None)
        rank = {key: i for i, key in enumerate(_ORDER)}
        return dict(sorted(out.items(), key=lambda kv: rank.get(kv[0], len(rank))))

    return walk(schema)


def object_schema(spec: type[Model], status: Any = None) -> dict[str, Any]:
    """A custom resource's schema: the spec model's, and the status TypedDict's (every key optional;
    None clears one)."""
    properties = {"spec": structural(spec.model_json_schema(by_alias=True))}
    if status is not None:
        properties["status"] = structural(TypeAdapter(status).json_schema(by_alias=True), nullable=True)
    return {"type": "object", "required": ["spec"], "properties": properties}


class Condition(TypedDict, total=False):
    """A Kubernetes status condition (metav1.Condition's fields)."""

    type: Required[str]
    status: Required[Literal["True", "False", "Unknown"]]
    reason: str
    message: str
    lastTransitionTime: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    observedGeneration: Int64 | None


Conditions = Annotated[
    list[Condition], Field(json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
]


def crd(
    *,
    kind: str,
    plural: str,
    short_names: list[str],
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
    status: bool = True,
    scope: Literal["Namespaced", "Cluster"] = "Namespaced",
) -> dict[str, Any]:
    """The CustomResourceDefinition of one awsctl.io kind; `status`: it has the status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["awsctl"],
            },
            "scope": scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    **({"subresources": {"status": {}}} if status else {}),
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }
