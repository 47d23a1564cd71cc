"""What every route accepts, and how it says no: text that UTF-8 and PostgreSQL can carry, numbers the database can
hold, ids and offsets in its integer range, and 422s in FastAPI's shape that name the field and the rule.

JSON can spell what no column can keep: a lone surrogate (`"\\ud800"`) cannot be encoded as UTF-8, PostgreSQL text
cannot hold NUL (`"\\u0000"`), `1e999` parses as infinity, and integers have no bound. Such a value is refused where
it enters, naming its place, instead of failing later as a 500 (or inside a worker after the job was accepted).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields, is_dataclass
from itertools import islice
from typing import Annotated, Any

from fastapi import Path, Query
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

#: the largest row id: the id columns are INTEGER, which is 32 bits on PostgreSQL (64 on SQLite)
ID_MAX = 2**31 - 1
#: the largest 64-bit integer: OFFSET's range in both databases, and any number kept inside a JSON column
DB_INT_MAX = 2**63 - 1
DB_INT_MIN = -(2**63)
#: an account name as a filter is at most as long as the column that holds it
ACCOUNT_MAX_CHARS = 64
#: at most this many problems are listed in one answer
MAX_LISTED_PROBLEMS = 20
#: arrays and objects inside each other at most this deep (MMS frames are 3; anything deep only costs stack)
MAX_DEPTH = 32

#: a row id in a path: 1 to ID_MAX
RowId = Annotated[int, Path(ge=1, le=ID_MAX, description="a row id: 1 to 2^31-1")]
#: a page offset in a query: 0 to DB_INT_MAX
Offset = Annotated[int, Query(ge=0, le=DB_INT_MAX, description="rows to skip: 0 to 2^63-1")]

Loc = tuple[str | int, ...]


def answers(**descriptions: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` from status=description pairs (`s404="no such job"`), so /docs lists every answer."""
    return {int(status[1:]): {"description": text} for status, text in descriptions.items()}


#: what every /v1 route may answer besides its own
V1_ANSWERS = answers(s401="missing or wrong bearer token (when MSGRELAY_API_TOKEN is set)",
                     s413="the body is larger than MSGRELAY_MAX_BODY_BYTES",
                     s503="the accounts file is broken (the error names file, account and field)")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as text (a NUL, a lone surrogate), or None when it can."""
    if "\x00" in value:
        return "must not contain the NUL character (\\u0000): the database cannot store it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"cannot be encoded as UTF-8: lone surrogate U+{ord(value[exc.start]):04X} at character "
                f"{exc.start} (a surrogate must come in a high+low pair)")
    return None


def _storable_text(value: str | None) -> str | None:
    """A query text the database can compare with (no NUL; a query string cannot carry a lone surrogate)."""
    if value is not None and (problem := text_problem(value)) is not None:
        raise ValueError(problem)
    return value


#: an account name given as a query filter
AccountFilter = Annotated[str | None, Query(max_length=ACCOUNT_MAX_CHARS, description="only this account's"),
                          AfterValidator(_storable_text)]


def _strings_ok(items: Sequence[Any]) -> bool:
    """True when `items` are all strings that can be stored (one C-speed pass for the common list of mobiles)."""
    if not all(type(item) is str for item in items):
        return False
    joined = "\x01".join(items)
    if joined.isascii():  # the usual case: plain mobiles
        return "\x00" not in joined
    return text_problem(joined) is None


def value_problems(value: Any, loc: Loc = (), *, int_range: bool = True) -> Iterator[tuple[Loc, str]]:
    """(place, rule) for every string, key or number inside a JSON-like value that cannot be stored, and every
    nesting deeper than MAX_DEPTH, in document order; `int_range` also refuses integers outside 64 bits."""
    stack: list[tuple[Loc, Any]] = [(loc, value)]
    while stack:
        where, item = stack.pop()
        if len(where) - len(loc) > MAX_DEPTH and isinstance(item, (Mapping, list, tuple)):
            yield where, f"is nested too deeply: at most {MAX_DEPTH} arrays or objects inside each other"
            continue
        if isinstance(item, str):
            if (problem := text_problem(item)) is not None:
                yield where, problem
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if int_range and not DB_INT_MIN <= item <= DB_INT_MAX:
                yield where, "must be an integer from -2^63 to 2^63-1 (what the database holds)"
        elif isinstance(item, float):
            if not math.isfinite(item):
                yield where, "must be a finite number (JSON has no NaN or Infinity)"
        elif isinstance(item, Mapping):
            children = []
            for key, child in item.items():
                if isinstance(key, str) and (problem := text_problem(key)) is not None:
                    yield where, f"has a key that {problem}"
                    continue
                children.append(((*where, key), child))
            stack.extend(reversed(children))
        elif isinstance(item, (list, tuple)):
            if not _strings_ok(item):
                stack.extend(reversed([((*where, i), child) for i, child in enumerate(item)]))
        elif is_dataclass(item) and not isinstance(item, type):
            stack.extend(reversed([((*where, f.name), getattr(item, f.name)) for f in fields(item)]))


def first_problem(values: Iterable[Any], *, int_range: bool = False) -> tuple[Loc, str] | None:
    """The first (place, rule) among `values` (e.g. decoded push records, place starting at the index)."""
    for i, value in enumerate(values):
        # a record's raw form first: its keys are the provider's own, so the place reads like the body
        raw = getattr(value, "raw", None)
        for part in ((raw,) if isinstance(raw, Mapping) else ()) + (value,):
            for found in value_problems(part, (i,), int_range=int_range):
                return found
    return None


def field_name(loc: Iterable[str | int]) -> str:
    """`recipients[1].mobile` from ("body", "recipients", 1, "mobile"): the request part dropped, indexes bracketed."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return safe_text(out)


def safe_text(value: str) -> str:
    """`value` with whatever UTF-8 cannot carry (lone surrogates) shown as a backslash escape."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")


def safe_json(value: Any) -> Any:
    """A JSON-like value whose every string can be encoded as UTF-8 (for error answers that quote input)."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, Mapping):
        return {safe_json(str(k)): safe_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [safe_json(v) for v in value]
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    return safe_text(str(value))


class SafeJSONResponse(JSONResponse):
    """A JSON answer that never fails to encode: text UTF-8 cannot carry is sent \\u-escaped."""

    def render(self, content: Any) -> bytes:
        """UTF-8 JSON; ASCII-escaped when some string cannot be encoded as UTF-8."""
        try:
            return super().render(content)
        except (UnicodeEncodeError, ValueError):
            return json.dumps(safe_json(content), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """FastAPI's 422 items (type, loc, msg) plus `field`; the input is not echoed (it may be the whole body)."""
    out = []
    for err in errors:
        loc = [p if isinstance(p, int) else safe_text(str(p)) for p in err.get("loc", ())]
        kind, msg = err.get("type", "value_error"), str(err.get("msg", ""))
        if kind == "json_invalid":  # its place is a character position, not a field
            where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
            reason = (err.get("ctx") or {}).get("error") or msg
            loc, msg = loc[:1], f"must be valid JSON: {reason}{where}"
        out.append({"type": kind, "loc": loc, "field": field_name(loc), "msg": safe_text(msg)})
    return out


class StorableBody(BaseModel):
    """A request body whose every string can be stored (UTF-8, no NUL) and every number fits the database."""

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        problems = list(islice(value_problems(data), MAX_LISTED_PROBLEMS))
        if problems:
            raise ValidationError.from_exception_data(cls.__name__, [
                InitErrorDetails(type=PydanticCustomError("value_error", rule), loc=loc, input=None)
                for loc, rule in problems])
        return data


def recipient_errors(value: Any, exc: ValidationError, *, object_tag: str) -> ValidationError:
    """The errors of a list of `str | RecipientIn` items with the union's member tags taken out of their places,
    keeping only those of the member the item's shape chose (a string, or an object named `object_tag`)."""
    kept: list[InitErrorDetails] = []
    for err in exc.errors():
        loc = err["loc"]
        if len(loc) >= 2 and isinstance(loc[0], int) and isinstance(value, list) and loc[0] < len(value):
            item = value[loc[0]]
            if not isinstance(item, (str, Mapping)):
                if loc[1] == "str":  # one error per item of neither shape
                    kept.append(InitErrorDetails(
                        type=PydanticCustomError("recipient_type", "must be a mobile string or an object {mobile, "
                                                                   "content?, custom_id?}"), loc=loc[:1], input=None))
                continue
            if (loc[1] == object_tag) != isinstance(item, Mapping):
                continue
            loc = (loc[0], *loc[2:])
        # without a context the message is not formatted again, so braces in it stay as they are
        kept.append(InitErrorDetails(type=PydanticCustomError(err["type"], err["msg"]), loc=loc, input=None))
    return ValidationError.from_exception_data(exc.title, kept)
