"""Request validation with JSON Schemas (one for the envelope, one per hook context, one for feedback).

Every request is checked by validators compiled from the schemas (fastjsonschema: microseconds);
only a request that fails is checked again by the reference implementation (jsonschema), which
lists every problem. Problems are reported by path ("context.patientId") with a message that never
echoes the submitted value: values may be PHI or tokens.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from importlib import resources
from itertools import islice
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource

from .errors import InvalidRequest, Problem

_SCHEMA_FILES = (
    "hook-request.schema.json",
    "context-patient-view.schema.json",
    "context-order-select.schema.json",
    "context-order-sign.schema.json",
    "feedback.schema.json",
)
_MAX_PROBLEMS = 10


@dataclass(frozen=True)
class HookRequest:
    hook: str
    hook_instance: str
    context: Mapping[str, Any]
    fhir_server: str | None
    fhir_authorization: Mapping[str, Any] | None
    prefetch: Mapping[str, Any] | None

    @property
    def patient_id(self) -> str:
        return self.context["patientId"]


@lru_cache(maxsize=1)
def _schemas() -> dict[str, dict[str, Any]]:
    schemas = {}
    for name in _SCHEMA_FILES:
        with resources.files(__package__).joinpath("schemas", name).open("rb") as handle:
            schemas[name] = json.load(handle)
    return schemas


# The reference validator's messages quote the offending value (repr): for a 5 MB value, or one nested a thousand
# levels, that costs seconds or a RecursionError. These keywords say only that the value failed; `_problem` words it.
Keyword = Callable[[Any, Any, Any, Any], Iterator[ValidationError]]


def _terse(failed: Callable[[Any, Any, Any], bool]) -> Keyword:
    def keyword(validator: Any, value: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
        if failed(validator, value, instance):
            yield ValidationError("failed")
    return keyword


def _is(validator: Any, instance: Any, kind: str) -> bool:
    return bool(validator.is_type(instance, kind))


_TERSE_KEYWORDS: dict[str, Keyword] = {
    "type": _terse(lambda v, types, i: not any(_is(v, i, t) for t in (types if isinstance(types, list) else [types]))),
    "pattern": _terse(lambda v, pattern, i: _is(v, i, "string") and re.search(pattern, i) is None),
    "minLength": _terse(lambda v, limit, i: _is(v, i, "string") and len(i) < limit),
    "maxLength": _terse(lambda v, limit, i: _is(v, i, "string") and len(i) > limit),
    "minItems": _terse(lambda v, limit, i: _is(v, i, "array") and len(i) < limit),
    "maxItems": _terse(lambda v, limit, i: _is(v, i, "array") and len(i) > limit),
    "minimum": _terse(lambda v, limit, i: _is(v, i, "number") and i < limit),
    "const": _terse(lambda v, const, i: not (type(i) is type(const) and i == const)),
    "enum": _terse(lambda v, values, i: not any(type(i) is type(e) and i == e for e in values)),
}


def _additional_properties(validator: Any, allowed: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """As the reference keyword, but lazily: it collects every extra member (half a million in a hostile prefetch)
    before the first error; this yields as it goes, so finding the first ten costs ten."""
    if not _is(validator, instance, "object"):
        return
    named = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = (p for p in instance if p not in named and not any(re.search(pattern, p) for pattern in patterns))
    if _is(validator, allowed, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], allowed, path=extra)
    elif allowed is False and next(extras, None) is not None:
        yield ValidationError("failed")


_TERSE_KEYWORDS["additionalProperties"] = _additional_properties
_TerseValidator = validators.extend(Draft202012Validator, _TERSE_KEYWORDS)


@lru_cache(maxsize=1)
def _validators() -> dict[str, Any]:
    """The reference validators (terse): slow, and they find every problem."""
    schemas = _schemas()
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    checkers = {}
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        checkers[name] = _TerseValidator(schema, registry=registry)
    return checkers


@lru_cache(maxsize=1)
def _compiled() -> dict[str, Any]:
    """Validators compiled to Python from the same schemas: the fast path for valid requests."""
    schemas = _schemas()
    by_id = {schema["$id"]: schema for schema in schemas.values()}
    handlers = {"https": lambda uri: by_id[uri.split("#")[0]]}
    return {name: fastjsonschema.compile(schema, handlers=handlers) for name, schema in schemas.items()}


def _check(name: str, instance: Any, prefix: str) -> None:
    try:
        try:
            _compiled()[name](instance)
        except fastjsonschema.JsonSchemaException:
            _raise_problems(_validators()[name].iter_errors(instance), prefix=prefix)
    except RecursionError:  # a value nested near the JSON parser's 1,024 levels, in a field either validator descends
        raise InvalidRequest([Problem(prefix or "(body)", "is nested too deeply")]) from None


def context_schema_name(hook: str) -> str | None:
    name = f"context-{hook}.schema.json"
    return name if name in _SCHEMA_FILES else None


def parse_hook_request(body: Any, expected_hook: str) -> HookRequest:
    """Validate a decoded request body for a service bound to `expected_hook`."""
    _check("hook-request.schema.json", body, prefix="")
    if body["hook"] != expected_hook:
        raise InvalidRequest([Problem("hook", f"this service answers '{expected_hook}', not the hook sent")])
    schema = context_schema_name(expected_hook)
    if schema is None:  # a service bound to a hook without a context schema is a programming error
        raise LookupError(f"no context schema for hook {expected_hook}")
    context = body["context"]
    _check(schema, context, prefix="context")
    if expected_hook == "order-select":
        _check_selections(context)
    return HookRequest(
        hook=body["hook"],
        hook_instance=body["hookInstance"],
        context=context,
        fhir_server=body.get("fhirServer"),
        fhir_authorization=body.get("fhirAuthorization"),
        prefetch=body.get("prefetch"),
    )


def parse_feedback(body: Any) -> list[Mapping[str, Any]]:
    _check("feedback.schema.json", body, prefix="")
    items = list(body["feedback"])
    unreal = [i for i, item in enumerate(items) if feedback_instant(item["outcomeTimestamp"]) is None]
    if unreal:
        raise InvalidRequest([Problem(f"feedback[{i}].outcomeTimestamp", "is not a real date and time") for i in unreal[:_MAX_PROBLEMS]])
    return items


def feedback_instant(timestamp: str) -> datetime | None:
    """The instant an RFC 3339 date-time (as the feedback schema admits it) names, in UTC to the microsecond;
    None for a date or time that does not exist. A leap second (:60) is read as the second before it."""
    text = timestamp.upper()
    leap = text[17:19] == "60"
    if leap:
        text = text[:17] + "59" + text[19:]
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return instant.astimezone(UTC)


def _check_selections(context: Mapping[str, Any]) -> None:
    drafts = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in context["draftOrders"].get("entry", [])
        if "id" in e["resource"]
    }
    unknown = [i for i, ref in enumerate(context["selections"]) if ref not in drafts]
    if unknown:
        raise InvalidRequest(
            [Problem(f"context.selections[{i}]", "does not name an order in context.draftOrders") for i in unknown]
        )


def _raise_problems(errors: Iterable[ValidationError], prefix: str) -> None:
    """The first problems found, in path order: a body with a million errors costs no more than one with ten."""
    first = islice(errors, _MAX_PROBLEMS)
    problems = [_problem(error, prefix) for error in sorted(first, key=lambda e: [str(p) for p in e.absolute_path])]
    if problems:
        raise InvalidRequest(problems)


def _problem(error: ValidationError, prefix: str) -> Problem:
    path = list(error.absolute_path)
    kind = error.validator if isinstance(error.validator, str) else ""  # always a keyword's name on a reported error
    value: Any = error.validator_value  # that keyword's value in the schema: any JSON
    if kind == "required":
        # one error per missing property; the message is "'name' is a required property"
        missing = next((name for name in value if error.message.startswith(repr(name))), None)
        return Problem(_dotted(prefix, [*path, missing] if missing else path), "is required")
    messages = {
        "type": lambda: f"must be {_type_words(value)}",
        "pattern": lambda: f"must match {value}",
        "enum": lambda: f"must be one of {', '.join(map(str, value))}",
        "const": lambda: f"must be {value!r}",
        "minLength": lambda: "must not be empty" if value == 1 else f"must have at least {value} characters",
        "maxLength": lambda: f"must have at most {value} characters",
        "minItems": lambda: f"must have at least {value} item(s)",
        "maxItems": lambda: f"must have at most {value} items",
        "minimum": lambda: f"must be at least {value}",
    }
    message = messages.get(kind, lambda: "is not valid here")()
    return Problem(_dotted(prefix, path), message)


def _type_words(value: Any) -> str:
    names = {"object": "an object", "array": "an array", "string": "a string", "integer": "a whole number",
             "number": "a number", "boolean": "true or false", "null": "null"}
    values: list[str] = value if isinstance(value, list) else [value]  # a schema's "type": a name or a list of names
    return " or ".join(names.get(v, v) for v in values)


def _dotted(prefix: str, path: list[Any]) -> str:
    text = prefix
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else str(part)
    return text or "(body)"
