"""The body of POST /v1/jobs, read the way its size asks for.

A body up to `STREAM_ABOVE_BYTES` is parsed whole, exactly as FastAPI parses a JSON body (the same errors). A
bigger one (a million recipients is ~15 MB) is read as a stream of JSON events (ijson's C parser over the
bytes): everything but the recipients is validated first, then the recipients are validated in batches and
handed on lazily, so they never exist as a million Python objects at once. A body the stream parser cannot
read is parsed whole after all, for the same errors as a small one.
"""
from __future__ import annotations

import email.message
import json
import re
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

import ijson
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from api.inputs import value_problems

STREAM_ABOVE_BYTES = 1024 * 1024
BATCH = 10_000
RECIPIENTS = "recipients"
_HIGH, _LOW = rb"\\u[dD][89abAB][0-9a-fA-F]{2}", rb"\\u[dD][c-fC-F][0-9a-fA-F]{2}"
_LONE_SURROGATE = re.compile(_HIGH + rb"(?!" + _LOW + rb")|(?<!" + _HIGH + rb")" + _LOW)
#: FastAPI's answer to a body it cannot parse (the app's handler turns it into a 422 naming the body)
UNPARSED = "There was an error parsing the body"


def is_json(content_type: str | None) -> bool:
    """Whether FastAPI would read a body of this type as JSON (no type, application/json, application/*+json)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


def parse_whole(raw: bytes, content_type: str | None) -> Any:
    """The body as FastAPI gives it to a model: the JSON value, or the bytes when the type is not JSON."""
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    if not is_json(content_type):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
                                       "input": {}, "ctx": {"error": exc.msg}}], body=exc.doc) from exc
    except Exception as exc:  # not UTF-8, nested too deeply, an integer of more than 4,300 digits
        raise HTTPException(status_code=400, detail=UNPARSED) from exc


def validated(model: type[BaseModel], value: Any) -> BaseModel:
    """`value` as `model`, or the errors placed under `body` as FastAPI places them."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def outline(raw: bytes) -> tuple[dict[str, Any], int] | None:
    """The top-level object without its recipients' items, and how many items they are (-1: `recipients` is
    not an array); None when the stream parser cannot read the body, it names `recipients` twice, or it escapes a
    lone surrogate (the stream parser would turn it into `?` where the whole parse refuses it)."""
    if _LONE_SURROGATE.search(raw):
        return None
    builder = ijson.ObjectBuilder()
    items, keys, inside = -1, set(), False
    item_prefix = f"{RECIPIENTS}.item"
    try:
        for prefix, event, value in ijson.parse(raw, use_float=True):
            if inside:
                if prefix == item_prefix and event in ("string", "number", "boolean", "null", "start_map",
                                                       "start_array"):
                    items += 1
                if not (prefix == RECIPIENTS and event == "end_array"):
                    continue
                inside = False
            elif prefix == RECIPIENTS and event == "start_array":
                inside, items = True, 0
            elif prefix == "" and event == "map_key":
                if value in keys:
                    return None
                keys.add(value)
            builder.event(event, value)
    except Exception:  # whatever the stream parser refuses, the whole parse names
        return None
    return (builder.value, items) if isinstance(builder.value, dict) else None


def recipients_of(raw: bytes, check: Callable[[list[Any]], Any]) -> Iterator[Any]:
    """The recipients, lazily, each batch first passed to `check(batch)` (which may raise for the batch)."""
    items = ijson.items(raw, f"{RECIPIENTS}.item", use_float=True)
    while batch := list(islice(items, BATCH)):
        yield from check(batch)


def batch_checker(adapter: Any) -> Callable[[list[Any]], list[Any]]:
    """A check of consecutive batches of recipients with `adapter` (a list TypeAdapter) and the storable-text
    rules, naming a bad one by its place in the whole list; returns the batch as the flow takes it."""
    seen = 0

    def check(batch: list[Any]) -> list[Any]:
        nonlocal seen
        offset, seen = seen, seen + len(batch)
        problems = [((RECIPIENTS, offset + where[0], *where[1:]), rule)
                    for where, rule in islice(value_problems(batch), 10)]
        if problems:
            raise RequestValidationError([{"type": "value_error", "loc": ("body", *loc), "msg": rule, "input": None}
                                          for loc, rule in problems])
        try:
            good = adapter.validate_python(batch)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", RECIPIENTS, offset + e["loc"][0], *e["loc"][1:])}
                                          for e in exc.errors()]) from None
        return [r if isinstance(r, str) else r.model_dump(exclude_none=True) for r in good]
    return check
