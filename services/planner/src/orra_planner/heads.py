"""The word of a read piece that says what is asked, and the nouns a verb acts on.

:func:`head_of` and :func:`objects_of` work on what :func:`orra_planner.reading.read_piece`
read; :func:`head_after_idiom` looks past a phrasal verb no service has ("sort out the
refund" asks for the refund).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orra_planner.lexicon import (
    GENERIC_NOUNS,
    GENERIC_VERBS,
    READING_VERBS,
    RECORDING_VERBS,
    readings,
)
from orra_planner.reading import Read

if TYPE_CHECKING:
    from orra_planner.lexicon import Term

__all__ = ["describes", "head_after_idiom", "head_of", "objects_of"]


def objects_of(read: Read, head: int | None) -> tuple[int, ...]:
    """Head nouns of the noun phrases right after a verb head, before any preposition.

    "send the customer a gift card" → customer, card; "post an update on the status page"
    → update. A service that serves such a part must know each of them.
    """
    if head != 0 or not read.verbish or not read.verbish[0]:
        return ()
    terms = read.terms
    heads: list[int] = []
    current: int | None = None
    for i in range(1, len(terms)):
        if not read.direct[i] or _participle(read, i):
            break
        if not read.glued[i] and current is not None:
            heads.append(current)
            current = None
        if not describes(terms[i]) and terms[i].lemma not in GENERIC_NOUNS and not read.unit[i]:
            current = i
    if current is not None:
        heads.append(current)
    return tuple(heads)


def _participle(read: Read, index: int) -> bool:
    """Whether the word at ``index`` opens a participle phrase ("quoting the balance").

    An -ing form with no noun glued after it says how, not what the verb acts on ("send a
    reminder quoting the balance"); "the shipping label" is a noun phrase.
    """
    found = read.terms[index]
    if not found.word.endswith("ing") or "VERB" not in readings(found.word):
        return False
    return index + 1 >= len(read.terms) or not read.glued[index + 1]


def describes(found: Term) -> bool:
    """Whether ``found`` can describe a thing ("best", "cheapest", "new"): never an object."""
    return found.modifier or "ADJ" in readings(found.word)


def head_after_idiom(read: Read, head: int | None) -> int | None:
    """The head when a phrasal verb or a light verb at the head only says "do it".

    A light verb is one of :data:`~orra_planner.lexicon.RECORDING_VERBS` and
    :data:`~orra_planner.lexicon.READING_VERBS` ("log a cancellation", "read the message").
    "Sort out PTO for EMP-1", "work out how upset they are": a verb and its particle that no
    service has say only "do it"; what is asked is then what follows, read as after a verb
    too general to say it. ``None`` when the head is no phrasal verb or nothing follows it.
    """
    if head != 0 or len(read.terms) < 2:
        return None
    verb = read.terms[0]
    light = verb.verb and verb.lemma in RECORDING_VERBS | READING_VERBS
    if " " not in verb.word and not light:
        return None
    rest = Read(
        terms=read.terms[1:],
        verbish=[False] * (len(read.terms) - 1),
        glued=[False, *read.glued[2:]],
        direct=read.direct[1:],
        unit=read.unit[1:],
        asked=None if read.asked is None or read.asked < 1 else read.asked - 1,
        question=read.question,
    )
    found = head_of(rest)
    if found is None:
        return None
    recording = " " not in verb.word and verb.lemma in RECORDING_VERBS
    if recording and not (_names_doing(rest.terms[found]) and read.indefinite[found + 1]):
        # "report the tenant": no event to put on record; "raise the rent": an event
        # put on record is a new one, "a cancellation", "a repair job"
        return None
    return found + 1


def _names_doing(found: Term) -> bool:
    """Whether ``found`` names a doing: a verb ("repair") or a noun made of one ("accrual")."""
    if "VERB" in readings(found.word):
        return True
    return (
        found.lemma.endswith(_EVENT_SUFFIXES)
        and found.family != found.lemma
        and "VERB" in readings(found.family)
    )


_EVENT_SUFFIXES = ("tion", "sion", "ment", "al", "ance", "ence", "ing", "ure", "ysis")
"""Suffixes of nouns that name what a verb does ("cancellation", "accrual", "payment"),
not who does it ("owner", "reporter")."""


def head_of(read: Read) -> int | None:
    """Index in ``read.terms`` of the word that says what the piece asks (``None``: none)."""
    terms = read.terms
    if not terms:
        return None
    if read.verbish[0] and terms[0].lemma not in GENERIC_VERBS:
        return 0
    if read.asked is not None:
        return read.asked  # "how upset is the customer" asks how upset
    if read.question:
        # the predicate after the subject: "is the customer ... frustrated"
        predicates = [
            i
            for i, t in enumerate(terms)
            if t.verb or t.modifier or {"VERB", "ADJ"} & set(readings(t.word))
        ]
        if predicates:
            return predicates[-1]
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
