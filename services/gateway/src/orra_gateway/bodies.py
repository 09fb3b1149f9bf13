"""Request bodies the gateway refuses before it decodes them: not JSON, not UTF-8, too deep.

Litestar decodes a JSON body into Python objects before it checks it against the route's
schema, and that decoding raises ``UnicodeDecodeError`` for invalid UTF-8 and
``RecursionError`` for JSON nested about a thousand levels deep: both were answered 500.
:func:`json_request_class` makes the request class the app uses instead; its ``json()``
refuses, as 400 problem details naming the problem,

* a body nested deeper than the limit (``ORRA_GATEWAY_MAX_DATA_DEPTH`` levels inside a data
  value, plus the three levels of the body around it), measured on the raw bytes before
  they are decoded and named by where it happens (``data[0].value``), so nothing deeper
  reaches the decoder, the route, the events or the parts that read data values;
* a body that is not UTF-8, naming the first bad byte;

and, as 415, a body whose ``Content-Type`` is not JSON (``application/json`` or any
``application/*+json``; a body without a ``Content-Type`` is read as JSON).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from litestar import Request

from orra_gateway.errors import BadRequest, FieldError, UnsupportedMediaType

__all__ = ["BODY_ENVELOPE_DEPTH", "json_request_class", "nested_deeper_than", "too_deep_at"]

BODY_ENVELOPE_DEPTH: Final = 3
"""Levels of ``POST /orchestrations`` around a data value: the body, ``data``, its item."""

_PATH_STEPS: Final = BODY_ENVELOPE_DEPTH
"""A path at fault is cut after this many steps (the field of the request that holds it)."""

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:,]', re.DOTALL)
_NOT_SYNTAX = bytes(b for b in range(256) if b not in b'"\\[]{}')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_PARENS = bytes.maketrans(b"[{]}", b"(())")


def nested_deeper_than(body: bytes, limit: int) -> bool:
    """Whether raw JSON ``body`` nests arrays and objects more than ``limit`` levels deep.

    Brackets inside strings do not count; the bytes need not be valid JSON (the decoder
    says what is wrong with them afterwards, and it stops at the first error, so a bracket
    after a stray closing one is never nested into). Everything but the last step runs in
    C: a body with no more brackets than ``limit`` is answered at once (most bodies);
    otherwise only the brackets are kept (strings are stripped first if one holds a
    bracket), and innermost pairs are removed up to ``limit`` times: a well-formed body no
    deeper than that is then empty, and a run of ``limit + 1`` opening brackets settles it
    the other way. Whatever is left is measured exactly, bracket by bracket.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b"\\" in body:  # escapes only occur in strings: drop them, quotes then pair up
        body = _ESCAPE.sub(b"", body)
    syntax = body.translate(None, _NOT_SYNTAX)
    quotes = syntax.count(b'"')
    if quotes % 2 or syntax.count(b'""') * 2 != quotes:  # a string holds a bracket
        syntax = _STRING.sub(b"", syntax)
    brackets = syntax.translate(None, _NOT_BRACKETS).translate(_PARENS)
    too_deep = b"(" * (limit + 1)
    rest = brackets
    for _ in range(limit):
        if too_deep in rest:
            return True
        fewer = rest.replace(b"()", b"")
        if not fewer:
            return False
        if fewer == rest:
            break
        rest = fewer
    depth = 0
    for byte in brackets:
        depth += 1 if byte == ord("(") else -1
        if depth > limit:
            return True
    return False


def _render(steps: tuple[str | int, ...]) -> str:
    path = ""
    for step in steps[:_PATH_STEPS]:
        path += f"[{step}]" if isinstance(step, int) else f"{'.' if path else ''}{step}"
    return path if path and not path.startswith("[") else f"body{path}"


def too_deep_at(body: bytes, limit: int) -> str:
    """Where raw JSON ``body`` first nests deeper than ``limit`` (``data[0].value``).

    The path is cut after three steps (the field of the request that holds the value).
    """
    frames: list[list[Any]] = []  # per open container: [is_array, index or key]
    last_string = b""
    for match in _TOKEN.finditer(body):
        token = match.group()
        if token in {b"{", b"["}:
            if len(frames) >= limit:
                break
            frames.append([token == b"[", 0 if token == b"[" else ""])
        elif token in {b"}", b"]"}:
            if frames:
                frames.pop()
        elif token == b",":
            if frames and frames[-1][0]:
                frames[-1][1] += 1
        elif token == b":":
            if frames and not frames[-1][0]:
                frames[-1][1] = _key(last_string)
        else:
            last_string = token
    return _render(tuple(where for _, where in frames))


def _key(token: bytes) -> str:
    try:
        key = json.loads(token)
    except ValueError:
        return token.decode(errors="replace").strip('"')
    return str(key)


def _is_json(media_type: str) -> bool:
    media_type = media_type.strip().lower()
    return (
        not media_type
        or media_type == "application/json"
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    )


def json_request_class(max_data_depth: int) -> type[Request[Any, Any, Any]]:
    """The request class of an app whose data values nest at most ``max_data_depth`` levels."""
    limit = max_data_depth + BODY_ENVELOPE_DEPTH

    class JsonRequest(Request[Any, Any, Any]):
        """A request whose ``json()`` refuses bodies it cannot decode safely."""

        async def json(self) -> Any:
            """The decoded JSON body.

            Raises:
                UnsupportedMediaType: the ``Content-Type`` is not JSON.
                BadRequest: the body is nested too deep, or is not UTF-8.
            """
            media_type, _ = self.content_type
            if not _is_json(media_type):
                raise UnsupportedMediaType(
                    f"the body must be JSON, sent with 'Content-Type: application/json', "
                    f"not {media_type}"
                )
            body = await self.body()
            if nested_deeper_than(body, limit):
                where = too_deep_at(body, limit)
            else:
                try:
                    return await super().json()
                except UnicodeDecodeError as exc:
                    message = f"not valid UTF-8: {exc.reason} at byte {exc.start}"
                    raise BadRequest(
                        f"the body is {message}", [FieldError("body", message)]
                    ) from None
                except RecursionError:  # cannot happen within the limit; never a 500 if it does
                    where = "body"
            message = (
                f"JSON is nested deeper than {limit} levels (a data value may nest at most "
                f"{max_data_depth}: ORRA_GATEWAY_MAX_DATA_DEPTH)"
            )
            raise BadRequest(
                f"the body is nested too deep at {where}", [FieldError(where, message)]
            )

    return JsonRequest
