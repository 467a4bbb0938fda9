"""Validate gradproof's JSON against docs/report-schema.json.

``jsonschema`` is used when it is installed; otherwise this module's small
validator, which implements the keywords the schema uses (``type``, ``enum``,
``const``, ``properties``, ``required``, ``additionalProperties``, ``items``,
``minimum``, ``oneOf``, local ``$ref``). ``jsonschema`` is not a test
dependency: it pulls in a compiled extension (``rpds-py``), and the project's
test extras stay pure Python where they can.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "report-schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}
_KNOWN = {"$schema", "$id", "$defs", "title", "description", "type", "enum", "const",
          "properties", "required", "additionalProperties", "items", "minimum", "oneOf", "$ref"}


def _resolve(ref: str) -> dict:
    assert ref.startswith("#/"), ref
    node: Any = SCHEMA
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def errors(value: Any, schema: dict | None = None, path: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (default: the report schema); [] when valid."""
    schema = SCHEMA if schema is None else schema
    unknown = set(schema) - _KNOWN
    assert not unknown, f"the small validator does not implement {unknown}"
    found: list[str] = []
    if "$ref" in schema:
        found += errors(value, _resolve(schema["$ref"]), path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return found + [f"{path}: {value!r:.80} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{path}: {value!r:.80} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        found.append(f"{path}: {value!r:.80} != {schema['const']!r}")
    if "minimum" in schema and _TYPES["number"](value) and value < schema["minimum"]:
        found.append(f"{path}: {value} < {schema['minimum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{path}: missing {key!r}")
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                found += errors(item, props[key], f"{path}.{key}")
            elif extra is False:
                found.append(f"{path}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                found += errors(item, extra, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for k, item in enumerate(value):
            found += errors(item, schema["items"], f"{path}[{k}]")
    if "oneOf" in schema:
        results = [errors(value, sub, path) for sub in schema["oneOf"]]
        passing = sum(not r for r in results)
        if passing != 1:
            found.append(f"{path}: matches {passing} of oneOf's {len(results)} schemas: "
                         + " | ".join("; ".join(r[:3]) for r in results))
    return found


def validate(document: Any) -> None:
    """Raise AssertionError listing what in ``document`` breaks the schema."""
    # the document must survive a strict JSON round trip (no NaN, no NumPy scalars)
    text = json.dumps(document, allow_nan=False)
    document = json.loads(text)
    problems = errors(document)
    try:
        import jsonschema
    except ImportError:
        pass
    else:  # pragma: no cover - not a test dependency
        jsonschema.Draft202012Validator.check_schema(SCHEMA)
        problems += [e.message for e in jsonschema.Draft202012Validator(SCHEMA)
                     .iter_errors(document)]
    assert not problems, "\n".join(problems)
