"""Service versions: what a version may look like, how two compare, how a subject names one.

A service declares the version of its contract (``Service(version="2")``). A version is
dotted numbers: ``1``, ``2``, ``1.4``, ``2.0.1`` (at most four numbers of at most nine
digits; a leading ``v`` is allowed: ``v2`` is ``2``). Versions compare number by number
(``1.10`` is higher than ``1.9``), and trailing zeros do not count: ``1``, ``1.0`` and
``v1.0.0`` are one version, whose canonical form is ``1``. Anything else (``beta``,
``1.0-rc1``, an empty string) is refused with :class:`InvalidVersion`, at the SDK when the
service is declared and by every registry follower for a registration from elsewhere.

Subjects carry a version as one token (dots are subject separators): ``1.4.2`` becomes
``1_4_2`` (:func:`version_token`), so one version of a service has one registration
subject, ``service.registered.<name>.<token>``.
"""

from __future__ import annotations

import re
from typing import Final

from orra_events.errors import InvalidVersion

__all__ = [
    "MAX_VERSION_PARTS",
    "Version",
    "canonical_version",
    "parse_version",
    "version_from_token",
    "version_token",
]

MAX_VERSION_PARTS: Final = 4
"""Numbers a version may have (``major.minor.patch.build``)."""

_MORE: Final = MAX_VERSION_PARTS - 1
_VERSION: Final = re.compile(rf"^[vV]?(\d{{1,9}}(?:\.\d{{1,9}}){{0,{_MORE}}})$")
_TOKEN: Final = re.compile(rf"^\d{{1,9}}(?:_\d{{1,9}}){{0,{_MORE}}}$")

Version = tuple[int, ...]
"""A parsed version: its numbers without trailing zeros (``(1, 4)`` for ``1.4.0``)."""


def parse_version(text: str) -> Version:
    """The numbers of a version, for comparing: ``1.10`` is higher than ``1.9``.

    Raises:
        InvalidVersion: ``text`` is not dotted numbers (the message shows what is).
    """
    match = _VERSION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise InvalidVersion(
            f"version {text!r} is not a version: use dotted numbers such as 1, 2 or 1.4.2 "
            f"(at most {MAX_VERSION_PARTS} numbers); a higher version replaces a lower one"
        )
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def canonical_version(text: str) -> str:
    """The canonical form of a version: ``"v1.0"`` → ``"1"``, ``"01.20"`` → ``"1.20"``.

    Raises:
        InvalidVersion: ``text`` is not a version.
    """
    return ".".join(str(n) for n in parse_version(text))


def version_token(text: str) -> str:
    """The subject token of a version: ``"1.4.2"`` → ``"1_4_2"`` (canonical first).

    Raises:
        InvalidVersion: ``text`` is not a version.
    """
    return "_".join(str(n) for n in parse_version(text))


def version_from_token(token: str) -> str | None:
    """The canonical version a subject token names, or ``None`` when it names none."""
    if not _TOKEN.fullmatch(token):
        return None
    return canonical_version(token.replace("_", "."))
