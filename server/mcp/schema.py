"""Shorter JSON schemas for `tools/list`: every client sends them to its model on every turn.

Pydantic's schemas carry a title on every model and field, and spell an optional value as
`anyOf: [X, {"type": "null"}]` with `default: null`. Dropping the titles and folding the
null into `type` keeps the meaning and saves a third of the tokens.
"""

from __future__ import annotations

from typing import Any

_NAMED = ("properties", "$defs", "patternProperties")


def compact(schema: dict[str, Any], *, result: bool = True) -> dict[str, Any]:
    """`schema` without titles and null defaults. For a `result`, optional values are typed
    `[X, "null"]`, and defaults and `required` are dropped; for arguments, an optional value
    is typed `X` (leaving it out is how to say null)."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key == "default" and (value is None or result):
            continue  # a result's defaults tell the model nothing
        if key == "required" and result and isinstance(value, list):
            continue  # nor which of its fields are always there
        if key in _NAMED and isinstance(value, dict):
            out[key] = {
                name: compact(sub, result=result) if isinstance(sub, dict) else sub for name, sub in value.items()
            }
        elif isinstance(value, dict):
            out[key] = compact(value, result=result)
        elif isinstance(value, list):
            out[key] = [compact(v, result=result) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = value
    return _fold_null(out, result)


def inline_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with every `$ref` to its own `$defs` replaced by the definition (ours are not
    recursive): no longer for a definition used once, and cheaper to validate."""
    defs = schema.get("$defs")
    if not isinstance(defs, dict):
        return schema
    prefix = "#/$defs/"

    def expand(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in defs:
                rest = {k: expand(v) for k, v in node.items() if k != "$ref"}
                return {**expand(defs[ref[len(prefix) :]]), **rest}
            return {k: expand(v) for k, v in node.items()}
        if isinstance(node, list):
            return [expand(v) for v in node]
        return node

    return expand({k: v for k, v in schema.items() if k != "$defs"})  # type: ignore[no-any-return]


def _fold_null(schema: dict[str, Any], result: bool) -> dict[str, Any]:
    arms = schema.get("anyOf")
    if not isinstance(arms, list) or len(arms) != 2 or {"type": "null"} not in arms:
        return schema
    other = next(a for a in arms if a != {"type": "null"})
    folded = {k: v for k, v in schema.items() if k != "anyOf"}
    if not result:
        return {**folded, **other}
    kind = other.get("type")
    if not isinstance(kind, str):
        return schema
    folded.update(other)
    folded["type"] = [kind, "null"]
    return folded
