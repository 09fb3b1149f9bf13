"""The parts of an action: what the user asks for, clause by clause, in their own words.

:func:`split_action` cuts an action at punctuation and at the words that join requests
("and", "then", "as well as", ...) and at the words that open a request of their own
("ensuring", "making sure", "before notifying ..."). Each piece is a :class:`Part` whose
``text`` is the user's verbatim words; a plan says which part each task serves.

Not every piece is a request:

* a piece with no content word ("please", "for ORD123") is context, not a part;
* a condition ("after the payment clears", "once it ships") is context of the request
  before it, unless it asks for a step itself ("before notifying the customer");
* a piece that is only a noun phrase after "and" or a comma ("search hotels and
  flights") is a request of its own that borrows the verb of the one before it.

Each part has a *head*, the word that says what is asked: the verb of a clause ("translate"
in "translate the contract"), or, after a verb too general to say it ("process",
"handle"), the head noun of its object ("payment" in "process order payment"). A service
serves a part only if it matches the head (:mod:`orra_planner.matching`); the other words
of the part and the borrowed ones rank the services that do.

Data values, numbers, ids and unknown capitalised names ("Paris") are arguments: they say
what to act on, never what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from orra_planner.lexicon import (
    FUNCTION_WORDS,
    GENERIC_NOUNS,
    GENERIC_VERBS,
    Term,
    is_known,
    term,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_events import DataField

__all__ = ["Part", "Word", "data_values", "request_parts", "split_action"]

_TOKEN: Final = re.compile(
    r"(?P<word>[A-Za-z0-9]+(?:['\u2019.\-_][A-Za-z0-9]+)*)|(?P<sep>[,;.!?:\n()\[\]]+)"
)
_JOINERS: Final = (
    ("and", "then"),
    ("as", "well", "as"),
    ("followed", "by"),
    ("after", "that"),
    ("and",),
    ("then",),
    ("plus",),
    ("afterwards",),
    ("but",),
    ("also",),
)
"""Words that join two requests; they belong to neither part."""

_OPENERS: Final = (
    ("to", "make", "sure"),
    ("to", "ensure"),
    ("making", "sure"),
    ("make", "sure"),
    ("ensuring",),
    ("ensure",),
    ("verifying",),
    ("checking",),
    ("so", "that"),
)
"""Words that open a request of their own, kept in its text ("ensuring it is not ...")."""

_CONDITIONS: Final = frozenset(
    {"after", "before", "once", "when", "whenever", "if", "unless", "until", "while"}
)
"""Words that open a condition: context, unless a step follows ("before notifying ...")."""

_DETERMINERS: Final = frozenset(
    "a an the this that these those my our your their his her its each every some any".split()  # noqa: SIM905
)
_EXTRA_FUNCTION: Final = frozenset({"sure", "etc", "asap", "e.g", "i.e"})


@dataclass(frozen=True, slots=True)
class Word:
    """A word of the action.

    Attributes:
        text: As written.
        start: Offset of its first character in the action.
        end: Offset after its last character.
        term: What the matcher compares; ``None`` for a function word or an argument.
    """

    text: str
    start: int
    end: int
    term: Term | None


@dataclass(frozen=True, slots=True)
class Part:
    """One piece of the action.

    Attributes:
        text: The user's verbatim words.
        start: Offset of ``text`` in the action.
        end: Offset after ``text``.
        terms: Its content words, in order.
        head: Index in ``terms`` of the word that says what is asked; ``None`` when
            nothing in it does (then it is context, not a request).
        context: Words borrowed from neighbouring pieces (the verb before a bare noun
            phrase, the object after a bare verb, a condition's words): they rank services
            but never make one serve the part.
        request: Whether it is a request (only requests are a plan's parts).
    """

    text: str
    start: int
    end: int
    terms: tuple[Term, ...]
    head: int | None
    context: tuple[Term, ...] = ()
    request: bool = True

    @property
    def head_term(self) -> Term | None:
        """The head word, if any."""
        return None if self.head is None else self.terms[self.head]


@dataclass
class _Piece:
    start: int
    end: int
    words: list[Word]
    joined: bool  # follows a joiner or a comma
    condition: bool  # opened by a condition word


def _is_argument(text: str, first: bool, values: frozenset[str]) -> bool:
    lower = text.lower()
    if lower in values or any(ch.isdigit() for ch in text):
        return True
    if first or not text[0].isupper() or (text.isupper() and len(text) <= 5):
        return False
    return not is_known(lower)


def _match_phrase(tokens: list[tuple[str, int, int]], i: int, phrase: tuple[str, ...]) -> bool:
    if i + len(phrase) > len(tokens):
        return False
    return all(tokens[i + k][0].lower() == w for k, w in enumerate(phrase))


def _pieces(action: str) -> list[_Piece]:
    tokens: list[tuple[str, int, int]] = []  # (text, start, end); separators as "\0"
    for m in _TOKEN.finditer(action):
        if m.group("sep") is not None:
            tokens.append(("\0", m.start(), m.end()))
        else:
            tokens.append((m.group("word"), m.start(), m.end()))
    pieces: list[_Piece] = []
    current: _Piece | None = None
    joined = False
    i = 0
    while i < len(tokens):
        text, start, end = tokens[i]
        if text == "\0":
            current, joined = None, True
            i += 1
            continue
        joiner = next((p for p in _JOINERS if _match_phrase(tokens, i, p)), None)
        if joiner is not None and (current is not None or pieces):
            current, joined = None, True
            i += len(joiner)
            continue
        opener = next((p for p in _OPENERS if _match_phrase(tokens, i, p)), None)
        condition = text.lower() in _CONDITIONS
        if (opener is not None or condition) and current is not None and current.words:
            current = None
        if current is None:
            current = _Piece(start, end, [], joined=joined, condition=condition)
            pieces.append(current)
            joined = False
        for k in range(len(opener) if opener else 1):
            word_text, w_start, w_end = tokens[i + k]
            current.words.append(Word(word_text, w_start, w_end, None))
            current.end = w_end
        i += len(opener) if opener else 1
    return pieces


@dataclass
class _Read:
    """What :func:`_terms` reads of a piece."""

    terms: list[Term]
    verbish: list[bool]  # stands where a verb would
    glued: list[bool]  # follows the previous content word with nothing between
    asked: int | None = None  # the word after "how" ("how upset ..."): what is asked


def _terms(piece: _Piece, values: frozenset[str]) -> _Read:
    """Content words of a piece, where each stands, and what a question asks."""
    read = _Read([], [], [])
    after_determiner = False
    first_content = True
    previous_content = False
    after_how = False
    for index, word in enumerate(piece.words):
        lower = word.text.lower().replace("\u2019", "'")
        lower = lower.removesuffix("'s")
        if lower in FUNCTION_WORDS or lower in _EXTRA_FUNCTION or "'" in lower:
            after_determiner = lower in _DETERMINERS or (after_determiner and lower == "own")
            after_how = lower == "how"
            previous_content = False
            continue
        if _is_argument(word.text, index == 0, values):
            after_determiner = after_how = previous_content = False
            continue
        position = first_content and not after_determiner
        found = term(lower, verb_position=position)
        after_determiner = False
        if found is None:
            after_how = previous_content = False
            continue
        if position and found.lemma in GENERIC_VERBS:
            # "process the refund": the object says what is asked, and its first word is
            # not in verb position ("process order payment" is about a payment).
            first_content = False
            previous_content = False
            continue
        if after_how and read.asked is None:
            read.asked = len(read.terms)
        read.terms.append(found)
        # a word the lexicon does not know, where a verb stands, is taken for one (a typo
        # of a verb must stay the part's head, not hand it to the object)
        read.verbish.append(position and (found.verb or not found.known))
        read.glued.append(previous_content)
        first_content = False
        previous_content = True
        after_how = False
    return read


def _head(read: _Read) -> int | None:
    terms = read.terms
    if not terms:
        return None
    if read.verbish[0] and terms[0].lemma not in GENERIC_VERBS:
        return 0
    if read.asked is not None:
        return read.asked  # "how upset is the customer" asks how upset
    # A noun phrase: its head is the last noun of its first run of words ("order payment"
    # → payment); a word too general to say anything ("request") is skipped, and a lone
    # modifier ("fraudulent") is the head when there is nothing else.
    general = GENERIC_NOUNS | GENERIC_VERBS
    nouns = [i for i, t in enumerate(terms) if not t.modifier and t.lemma not in general]
    if nouns:
        last = nouns[0]
        for i in range(nouns[0] + 1, len(terms)):
            if not read.glued[i]:
                break
            if i in nouns:
                last = i
        return last
    others = [i for i, t in enumerate(terms) if t.lemma not in general]
    return others[0] if others else None


@lru_cache(maxsize=4096)
def split_action(action: str, values: frozenset[str] = frozenset()) -> tuple[Part, ...]:
    """Every piece of ``action``, requests and context, in order (see the module docstring).

    Args:
        action: The action text.
        values: The action's data values, lower-case (they are arguments, not requests).
    """
    raw = [(piece, _terms(piece, values)) for piece in _pieces(action)]
    parts: list[Part] = []
    for index, (piece, read) in enumerate(raw):
        terms, verbish = read.terms, read.verbish
        text = action[piece.start : piece.end].strip()
        head = _head(read)
        # "once the refund is done" is a condition, context of the request before it;
        # "before notifying the customer" asks for a step.
        step = bool(verbish) and verbish[0] and terms[0].word.endswith("ing")
        request = head is not None and (not piece.condition or step)
        context: list[Term] = []
        if request and head is not None and not verbish[0] and piece.joined:
            # a bare noun phrase after "and": it borrows the verb of the request before it
            for earlier in reversed(parts):
                if earlier.request and earlier.head_term is not None:
                    if earlier.head_term.verb:
                        context.append(earlier.head_term)
                    context.extend(t for t in earlier.context if t.verb)
                    break
        if request and head is not None and verbish[0] and all(t.verb or t.modifier for t in terms):
            # "... then book the cheapest": a verb without an object of its own means the
            # object of the request before it
            for earlier in reversed(parts):
                if earlier.request:
                    context.extend(t for t in earlier.terms if not t.verb and not t.modifier)
                    break
        if request and len(terms) == 1 and terms[0].verb and index + 1 < len(raw):
            # a bare verb before "and" ("check and reserve stock") shares the next object
            context.extend(t for t in raw[index + 1][1].terms if not t.verb)
        parts.append(
            Part(
                text=text,
                start=piece.start,
                end=piece.end,
                terms=tuple(terms),
                head=head if request else None,
                context=tuple(context),
                request=request,
            )
        )
    # Conditions and context lend their words to the request before them.
    out: list[Part] = []
    for part in parts:
        if not part.request and out and part.terms:
            last = out[-1]
            out[-1] = Part(
                last.text,
                last.start,
                last.end,
                last.terms,
                last.head,
                last.context + part.terms,
                last.request,
            )
        out.append(part)
    return tuple(out)


def request_parts(action: str, values: frozenset[str] = frozenset()) -> tuple[Part, ...]:
    """The request parts of ``action`` only (what a plan must account for)."""
    return tuple(p for p in split_action(action, values) if p.request)


def data_values(data: Sequence[DataField]) -> frozenset[str]:
    """The action's scalar data values, lower-case: words of an action that are arguments."""
    return frozenset(
        str(d.value).lower()
        for d in data
        if isinstance(d.value, str | int | float) and not isinstance(d.value, bool)
    )
