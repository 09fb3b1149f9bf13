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

import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from orra_planner.heads import describes, head_after_idiom, head_of, objects_of
from orra_planner.lexicon import GENERIC_VERBS, READING_VERBS, is_phrasal, term
from orra_planner.reading import (
    CONDITIONS,
    JOINERS,
    OPENERS,
    PARTICLES,
    QUESTION_AUX,
    WH_WORDS,
    Piece,
    Word,
    read_piece,
    value_words,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orra_events import DataField
    from orra_planner.lexicon import Term

__all__ = [
    "Part",
    "Word",
    "data_fields",
    "data_values",
    "mentioned_values",
    "request_parts",
    "split_action",
    "value_words",
]

_TOKEN: Final = re.compile(
    r"(?P<word>[A-Za-z0-9]+(?:(?:['\u2019.\-_]|(?<=[0-9]),(?=[0-9]{3}(?![0-9])))[A-Za-z0-9]+)*)"
    r"|(?P<sep>[,;.!?:\n()\[\]]+)"
)
_FIELD_WORD: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")
_COMPOUND: Final = re.compile(r"[A-Za-z]{2,}(?:-[A-Za-z]{2,})+")
_JOINER_STARTS: Final = frozenset(p[0] for p in JOINERS)
_OPENER_STARTS: Final = frozenset(p[0] for p in OPENERS)


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
        objects: Indexes in ``terms`` of the head nouns of the verb's objects ("update" in
            "post an update on the status page"): a service serving the part knows them.
        question: Whether it asks a question ("Has PROD-1 sold out?"): an answer reads,
            so the data may say which service can give it.
        idiom: The head to read when no service has the phrasal verb at its head ("Sort
            out PTO for EMP-1" asks for the PTO): index in ``terms``, or ``None``.
        idiom_asks: Whether what follows the idiom asks how or what ("work out how upset
            they are"): read so, the part is a question.
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
    objects: tuple[int, ...] = ()
    question: bool = False
    idiom: int | None = None
    idiom_asks: bool = False

    @property
    def head_term(self) -> Term | None:
        """The head word, if any."""
        return None if self.head is None else self.terms[self.head]


def _match_phrase(tokens: list[tuple[str, int, int]], i: int, phrase: tuple[str, ...]) -> bool:
    if i + len(phrase) > len(tokens):
        return False
    return all(tokens[i + k][0].lower() == w for k, w in enumerate(phrase))


def _tokens(action: str) -> list[tuple[str, int, int]]:
    """The words of ``action`` as (text, start, end); a separator as a NUL character."""
    tokens: list[tuple[str, int, int]] = []
    for m in _TOKEN.finditer(action):
        if m.group("sep") is not None:
            tokens.append(("\0", m.start(), m.end()))
        elif (joined := _particle_compound(m.group("word"))) is not None:
            tokens.append((joined, m.start(), m.end()))  # "sign-off", "kick-off": one word
        elif _COMPOUND.fullmatch(m.group("word")):
            # "help-centre", "two-factor": the words of a compound, one by one
            offset = m.start()
            for piece in m.group("word").split("-"):
                tokens.append((piece, offset, offset + len(piece)))
                offset += len(piece) + 1
        else:
            tokens.append((m.group("word"), m.start(), m.end()))
    return tokens


def _particle_compound(word: str) -> str | None:
    """A hyphenated verb and particle WordNet knows as one verb, joined ("sign-off")."""
    pieces = word.lower().split("-")
    if len(pieces) != 2 or pieces[1] not in PARTICLES:
        return None
    joined = pieces[0] + pieces[1]
    return joined if is_phrasal(joined) else None


def _asks_whether(current: Piece) -> bool:
    """Whether "if" after ``current`` means "whether" ("see if", "find out if").

    After a general verb alone (and its particle), "if" opens what to find out, not a
    condition: "see if the cheapest one is within policy" asks for a check.
    """
    words = [w.text.lower() for w in current.words]
    if not words or len(words) > 2 or (len(words) == 2 and words[1] not in PARTICLES):
        return False
    found = term(words[0], verb_position=True)
    return found is not None and found.verb and found.lemma in GENERIC_VERBS


def _pieces(action: str) -> list[Piece]:
    tokens = _tokens(action)
    pieces: list[Piece] = []
    current: Piece | None = None
    aside: Piece | None = None  # the clause an aside in parentheses interrupts
    joined = comma = False
    i = 0
    while i < len(tokens):
        text, start, end = tokens[i]
        if text == "\0":
            mark = action[start:end].strip()
            if mark == "(" and current is not None and current.words:
                aside, current, joined = current, None, True  # the aside is a piece
            elif mark == ")" and aside is not None:
                current, aside = aside, None  # the clause it interrupted goes on
            else:
                aside, current, joined = None, None, True
                comma = mark == ","
            i += 1
            continue
        lowered = text.lower()
        joiner = (
            next((p for p in JOINERS if _match_phrase(tokens, i, p)), None)
            if lowered in _JOINER_STARTS
            else None
        )
        if joiner is not None and (current is not None or pieces):
            current, joined, comma = None, True, False
            i += len(joiner)
            continue
        opener = (
            next((p for p in OPENERS if _match_phrase(tokens, i, p)), None)
            if lowered in _OPENER_STARTS
            else None
        )
        # "when the payment clears" is a condition; "When is invoice INV-1 due?" a question
        condition = (
            lowered in CONDITIONS
            and not (
                lowered in WH_WORDS
                and i + 1 < len(tokens)
                and tokens[i + 1][0].lower() in QUESTION_AUX
            )
            and not (lowered == "if" and current is not None and _asks_whether(current))
        )
        if (opener is not None or condition) and current is not None and current.words:
            current = None
        if current is None:
            current = Piece(start, end, [], joined=joined, condition=condition, comma=comma)
            pieces.append(current)
            joined = comma = False
        for k in range(len(opener) if opener else 1):
            word_text, w_start, w_end = tokens[i + k]
            current.words.append(Word(word_text, w_start, w_end, None))
            current.end = w_end
        i += len(opener) if opener else 1
    return pieces


@lru_cache(maxsize=4096)
def split_action(
    action: str, values: frozenset[str] = frozenset(), fields: frozenset[str] = frozenset()
) -> tuple[Part, ...]:
    """Every piece of ``action``, requests and context, in order (see the module docstring).

    Args:
        action: The action text.
        values: The action's data values, lower-case (they are arguments, not requests).
        fields: The words of the action's data field names (:func:`data_fields`): a piece
            that only names a field and gives its value (", approver Tomás Ruiz") is data.
    """
    spans = _value_spans(action.lower(), values)
    raw = [(piece, read_piece(piece, values, spans)) for piece in _pieces(action)]
    parts: list[Part] = []
    for index, (piece, read) in enumerate(raw):
        terms, verbish = read.terms, read.verbish
        text = action[piece.start : piece.end].strip()
        head = head_of(read)
        # "once the refund is done" is a condition, context of the request before it;
        # "before notifying the customer" asks for a step.
        step = bool(verbish) and verbish[0] and terms[0].word.endswith("ing")
        request = head is not None and not read.statement and (not piece.condition or step)
        if request:
            request, terms = _aside(piece, terms, values, fields)
        context: list[Term] = list(read.content) if read.clause_object else []
        if request and head is not None and not verbish[0] and piece.joined:
            # a bare noun phrase after "and": it borrows the verb of the request before it
            for earlier in reversed(parts):
                if earlier.request and earlier.head_term is not None:
                    if earlier.head_term.verb:
                        context.append(earlier.head_term)
                    context.extend(t for t in earlier.context if t.verb)
                    break
        if (
            request
            and head is not None
            and verbish[0]
            and all(t.verb or describes(t) for t in terms)
        ):
            # "... then book the cheapest": a verb without an object of its own means the
            # object of the request before it
            for earlier in reversed(parts):
                if earlier.request:
                    context.extend(t for t in earlier.terms if not t.verb and not describes(t))
                    break
        if request and len(terms) == 1 and terms[0].verb and index + 1 < len(raw):
            # a bare verb before "and" ("check and reserve stock") shares the next object
            context.extend(t for t in raw[index + 1][1].terms if not t.verb)
        if not request and read.refers:
            # "EMP-1 has handed in their resignation. Please process it.": what to process
            # is what was said; the part is the user's "Please process it"
            said = next((r[1] for r in reversed(raw[:index]) if r[1].statement), None)
            things = [] if said is None else [i for i, t in enumerate(said.terms) if not t.verb]
            if said is not None and things:  # what happened to the thing is no request
                terms, head, request = said.terms, things[-1], True
        first = piece.words[0].text.lower().replace("\u2019", "'") if piece.words else ""
        first = first.removesuffix("'s")  # "Where's TRK-1?" asks where
        parts.append(
            Part(
                text=text,
                start=piece.start,
                end=piece.end,
                terms=tuple(terms),
                head=head if request else None,
                context=tuple(context),
                request=request,
                objects=objects_of(read, head) if request else (),
                question=read.question or first in WH_WORDS,
                idiom=head_after_idiom(read, head) if request and terms is read.terms else None,
                idiom_asks=(read.asked is not None and read.asked > 0)
                or (bool(terms) and terms[0].verb and terms[0].lemma in READING_VERBS),
            )
        )
    return _lend_context(parts)


def _aside(
    piece: Piece, terms: list[Term], values: frozenset[str], fields: frozenset[str]
) -> tuple[bool, list[Term]]:
    """Whether a piece that reads as a request is one, and its terms.

    ", approver Tomás Ruiz", ", last working day 2027-01-31" are data, whose words are no
    context of the request beside them either; "Book hotel HTL-1, checking in 2026-11-30":
    a lone participle and its values after a comma say how the request before is meant.
    """
    if piece.joined and _labels(piece, terms, values, fields):
        return False, []
    if piece.comma and len(terms) == 1 and terms[0].word.endswith("ing"):
        return False, terms
    return True, terms


def _labels(
    piece: Piece, terms: Sequence[Term], values: frozenset[str], fields: frozenset[str]
) -> bool:
    """Whether a piece only names a data field and gives its value: data, not a request.

    Its words are the field's (", approver Tomás Ruiz"), or it opens with one and ends with
    the value, one other word at most beside them (", last working day 2027-01-31" with
    ``lastDay``).
    """
    named = sum(t.word in fields for t in terms)
    if named == len(terms):
        return True
    last = piece.words[-1].text
    valued = last.lower() in values or any(ch.isdigit() for ch in last)
    return valued and terms[0].word in fields and named >= max(2, len(terms) - 1)


def _value_spans(lower: str, values: frozenset[str]) -> list[tuple[int, int]]:
    """Where the data values of several words occur in the (lower-case) action."""
    spans: list[tuple[int, int]] = []
    for value in values:
        needle = value.strip()
        if " " not in needle:
            continue
        at = lower.find(needle)
        while at >= 0:
            spans.append((at, at + len(needle)))
            at = lower.find(needle, at + 1)
    return spans


def _lend_context(parts: list[Part]) -> tuple[Part, ...]:
    """Conditions and context lend their words to the request before them.

    First in the action, they lend them to the request after them ("Dana is leaving us,
    process her departure").
    """
    out = list(parts)
    for index, part in enumerate(parts):
        if part.request or not part.terms:
            continue
        before = [i for i in range(index) if out[i].request]
        after = [i for i in range(index + 1, len(out)) if out[i].request]
        target = before[-1] if before else after[0] if after else None
        if target is not None:
            lent = out[target].context + part.terms
            out[target] = dataclasses.replace(out[target], context=lent)
    return tuple(out)


def request_parts(
    action: str, values: frozenset[str] = frozenset(), fields: frozenset[str] = frozenset()
) -> tuple[Part, ...]:
    """The request parts of ``action`` only (what a plan must account for)."""
    return tuple(p for p in split_action(action, values, fields) if p.request)


def data_fields(data: Sequence[DataField]) -> frozenset[str]:
    """The words of the action's data field names, lower-case (target, currency)."""
    return frozenset(word.lower() for d in data for word in _FIELD_WORD.findall(d.field))


def mentioned_values(action: str, data: Sequence[DataField]) -> frozenset[str]:
    """The :func:`data_values` that can change how ``action`` is read: those it mentions.

    Reading compares the action's words, and searches its lower-case text, with the values;
    a value that is not in the lower-case action can match neither. Lower-casing is
    per character except for a final sigma, so a value that is not ASCII is always kept.
    A value one of whose unknown words the action mentions ("metformin" of "metformin 500
    mg") is kept too (:func:`value_words`). The split and the matching of an action are
    then the same for requests that differ only in values the action does not mention (an
    order id, an amount), and are remembered across them.
    """
    lower = action.lower()
    kept: list[str] = []
    words: set[str] | None = None
    for v in data_values(data):
        if v in lower or not v.isascii():
            kept.append(v)
        elif " " in v.strip() and (unknown := value_words(frozenset({v}))):
            words = set(re.findall(r"[a-z0-9]+", lower)) if words is None else words
            if not words.isdisjoint(unknown):
                kept.append(v)
    return frozenset(kept)


def data_values(data: Sequence[DataField]) -> frozenset[str]:
    """The action's scalar data values, lower-case: words of an action that are arguments.

    The items of a list count too ("give them access to Jira and Slack" with
    ``applications: [jira, slack]``: Slack is an application, not a verb).
    """
    found: set[str] = set()
    for d in data:
        for value in d.value if isinstance(d.value, list) else [d.value]:
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                found.add(str(value).lower())
    return frozenset(found)
