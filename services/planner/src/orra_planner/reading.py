"""How one piece of an action reads: its content words, its head, its objects.

:func:`read_piece` reads the words of one piece that :mod:`orra_planner.parts` cut from
an action: which are arguments (data values, ids, numbers, months, proper names), which
stand where a verb would, what a question asks, whether the piece states a fact rather
than asks for something, and what a "that" clause says. :mod:`orra_planner.heads`
then finds the word that says what is asked and the nouns a verb acts on.
The word lists here are grammar (determiners, modals, particles), not vocabulary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from orra_planner.lexicon import (
    FUNCTION_WORDS,
    GENERIC_VERBS,
    Term,
    as_verb,
    is_known,
    is_phrasal,
    past_form,
    phrasal,
    readings,
    term,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "CONDITIONS",
    "JOINERS",
    "OPENERS",
    "PARTICLES",
    "QUESTION_AUX",
    "WH_WORDS",
    "Piece",
    "Read",
    "Word",
    "read_piece",
    "value_words",
]

JOINERS: Final = (
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

OPENERS: Final = (
    ("to", "make", "sure"),
    ("to", "ensure"),
    ("making", "sure"),
    ("make", "sure"),
    ("ensuring",),
    ("ensure",),
    ("so", "that"),
)
"""Words that open a request of their own, kept in its text ("ensuring it is not ...")."""

CONDITIONS: Final = frozenset(
    {"after", "before", "once", "when", "whenever", "if", "unless", "until", "while"}
)
"""Words that open a condition: context, unless a step follows ("before notifying ...")."""

_DETERMINERS: Final = frozenset(
    "a an the this that these those my our your their his her its each every some any".split()  # noqa: SIM905
)
_EXTRA_FUNCTION: Final = frozenset({"sure", "etc", "asap", "e.g", "i.e", "much", "many"})
QUESTION_AUX: Final = frozenset(
    "is are was were has have had does do did will would should can could".split()  # noqa: SIM905
)
_ADDRESSEE: Final = frozenset({"you", "we", "i"})
_MODALS: Final = frozenset(
    [
        "can",
        "could",
        "should",
        "must",
        "may",
        "might",
        "shall",
        "will",
        "would",
        "need",
        "needs",
        "needed",
        "want",
        "wants",
        "wanted",
        "wish",
        "wishes",
    ]
)
_BE: Final = frozenset({"is", "are", "was", "were"})
_PERFECT: Final = frozenset({"has", "have", "had"})
"""After a subject, "has" opens what happened ("the client has been waiting three days")."""
_MONTHS: Final = frozenset(
    "January February March April May June July August September October November December".split()  # noqa: SIM905
)
"""Capitalised month names: parts of dates, arguments ("from 1 to 8 August 2027")."""
PARTICLES: Final = frozenset({"up", "off", "back", "out", "down", "away", "over", "aside"})
"""Particles that make one verb of the verb before them ("look up", "pay back")."""
_CLAUSE_SUBJECTS: Final = frozenset(
    "the their his her its our my your it we they he she i you this these those there".split()  # noqa: SIM905
)
_OBJECT_PRONOUNS: Final = frozenset({"it", "them", "him", "her", "me", "us", "this", "that"})
_PERSONS: Final = frozenset({"them", "him", "her", "me", "us"})
"""Object pronouns of people: a noun opening a clause before one is a verb ("text them")."""
_REFERRING: Final = frozenset({"it", "this", "that", "them"})
"""Pronouns a general verb acts on when the request is what was just said ("process it")."""
_WHAT: Final = frozenset({"what", "where", "which", "who", "whose"})
_IS_SUBJECTS: Final = frozenset({"she", "he", "it", "that", "this", "there", "here"})
"""Pronouns whose "'s" is "is" ("she's the budget holder"), not a possessive."""
WH_WORDS: Final = frozenset({"how", "what", "which", "where", "when", "who", "whether"})
_OPENING_WORDS: Final = frozenset(w for phrase in OPENERS for w in phrase[:1]) | frozenset(
    {"how", "what", "which", "where", "when", "who", "why", "whether", "please", "pls", "plz"}
)


_VALUE_WORD: Final = re.compile(r"[a-z0-9]+")


@lru_cache(maxsize=4096)
def value_words(values: frozenset[str]) -> frozenset[str]:
    """The words of data values of several words that the lexicon does not know.

    "Renew the metformin" with ``medication: metformin 500 mg``: the user names the thing
    by the word of the value that says what it is (a drug, a product, a place); a word no
    dictionary has is then that argument, not a typo nor a request. A known word of a value
    ("Cancel everything" of a message) stays a word: the action may use it for itself.
    """
    return frozenset(
        word
        for value in values
        if " " in value.strip()
        for word in _VALUE_WORD.findall(value)
        if len(word) > 2 and word.isalpha() and not is_known(word)
    )


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


@dataclass
class Piece:
    """A piece of an action between separators and joiners (:mod:`orra_planner.parts`)."""

    start: int
    end: int
    words: list[Word]
    joined: bool  # follows a joiner or a comma
    condition: bool  # opened by a condition word
    comma: bool = False  # follows a comma, no joining word


def _is_argument(text: str, first: bool, values: frozenset[str]) -> bool:
    lower = text.lower()
    if lower in values or any(ch.isdigit() for ch in text) or (not first and text in _MONTHS):
        return True
    if lower in value_words(values):
        return True  # "renew the metformin" with ``medication: metformin 500 mg``
    if first or not text[0].isupper() or (text.isupper() and len(text) <= 5):
        return False
    return not is_known(lower)


@dataclass
class Read:
    """What :func:`_terms` reads of a piece."""

    terms: list[Term]
    verbish: list[bool]  # stands where a verb would
    glued: list[bool]  # follows the previous content word with nothing between
    direct: list[bool] = field(default_factory=list)  # no preposition since the first word
    unit: list[bool] = field(default_factory=list)  # right after a number ("45 euros")
    indefinite: list[bool] = field(default_factory=list)  # in a noun phrase opened by "a"
    asked: int | None = None  # the word after "how" ("how upset ..."): what is asked
    question: bool = False  # a yes/no question ("Is the customer frustrated?")
    statement: bool = False  # a statement of fact ("the fix is deployed"), not a request
    content: list[Term] = field(default_factory=list)  # a "that" clause
    clause_object: bool = False  # the clause follows the verb: it is what the verb acts on
    refers: bool = False  # a general verb acting on a pronoun ("process it"): the context's


def _names(words: Sequence[Word], values: frozenset[str]) -> set[int]:
    """Indexes of the words of proper names: runs of capitalised words with an unknown one.

    "Dana Ruiz (EMP-2213) is leaving", "approver Tomás Ruiz", "supplier Nordlicht GmbH": a
    person or a company is an argument, never a request, even first in the action. A run
    that opens the action counts only when its second word is unknown too ("Escalte Ticket
    T-1" is a typo of a verb, then a noun), and a verb opening it is no name
    (:func:`_commanded`).
    """
    found: set[int] = set()
    index = 0
    while index < len(words):
        run = index
        while run < len(words) and _capitalised(words[run].text):
            run += 1
        if run - index >= 2:
            unknown = [not is_known(w.text.lower()) for w in words[index:run]]
            if (unknown[1] if index == 0 else any(unknown)) or all(
                w.text.lower() in values for w in words[index:run]
            ):
                found.update(range(index + _commanded(words, index, run), run))
        index = max(run, index + 1)
    return found


def _commanded(words: Sequence[Word], index: int, run: int) -> int:
    """1 when the run of capitalised words opens the action with a verb, else 0.

    "Cancel Bella Smith's visit", "Pay Acme Corp for INV-1": a verb, then whose or to
    whom; "Mark Jones is leaving", "Mark Jones can't come" (a be, a have, a modal, a
    negation after the run): a name, the subject.
    """
    if index != 0 or "VERB" not in readings(words[0].text.lower()):
        return 0
    after = words[run].text.lower().replace("\u2019", "'") if run < len(words) else ""
    subject = after in _BE | _PERFECT | _MODALS | {"does", "did"} or after.endswith("n't")
    return 0 if subject else 1


def _capitalised(text: str) -> bool:
    return text[:1].isupper() and not text.isupper() and text.isalpha()


def _finite(word: str) -> bool:
    """Whether ``word`` is an inflected verb form ("went", "arrived", "works")."""
    found = readings(word)
    verb = found.get("VERB")
    return verb is not None and verb != word and not word.endswith("ing")


def _verbed(words: Sequence[Word], index: int, values: frozenset[str]) -> bool:
    """Whether the noun opening a clause is used as a verb ("Text customer CUS-1 that ...").

    English makes verbs of nouns at the start of an instruction; it is one when a noun
    phrase follows directly (a determiner or a noun, not a preposition or an argument).
    """
    if index + 1 >= len(words):
        return False
    following = words[index + 1].text.lower()
    if following in _DETERMINERS - {"that", "this", "these", "those"}:
        return True
    if following in _PERSONS:
        return True  # "text them the details", "email her the invoice"
    if following in PARTICLES and is_phrasal(words[index].text.lower() + following):
        return True  # "kit out a starter": WordNet knows the phrasal verb
    if following in FUNCTION_WORDS or _is_argument(
        words[index + 1].text, first=False, values=values
    ):
        return False
    found = readings(following)
    return "NOUN" in found and "VERB" not in found


def read_piece(piece: Piece, values: frozenset[str], spans: Sequence[tuple[int, int]]) -> Read:
    """Content words of a piece, where each stands, and what a question asks."""
    return _PieceReader(piece, values, spans).run()


class _PieceReader:
    """:func:`read_piece`'s walk over a piece's words, with what it has seen so far."""

    __slots__ = (
        "after_argument",
        "after_determiner",
        "after_how",
        "after_modal",
        "after_need",
        "after_number",
        "clause",
        "finite",
        "first",
        "first_content",
        "generic",
        "imperative",
        "indefinite",
        "last_verb",
        "named_after_first",
        "names",
        "plain_be",
        "preposition",
        "previous_content",
        "read",
        "skip",
        "spans",
        "subject",
        "values",
        "words",
    )

    def __init__(
        self, piece: Piece, values: frozenset[str], spans: Sequence[tuple[int, int]]
    ) -> None:
        self.words = words = piece.words
        self.values = values
        self.spans = spans
        self.read = Read([], [], [])
        self.first = first = words[0].text.lower() if words else ""
        second = words[1].text.lower() if len(words) > 1 else ""
        # "Is the customer frustrated?", "Has PROD-1 sold out?" ask about what follows the
        # subject; "Can you refund ..." is a request.
        self.read.question = first in QUESTION_AUX and second not in _ADDRESSEE
        self.skip = 2 if first in QUESTION_AUX and second in _ADDRESSEE else 0
        self.names = _names(words, values)
        self.after_determiner = False
        self.indefinite = False  # in a noun phrase opened by "a" or "an"
        self.first_content = True
        self.previous_content = False
        self.after_how = self.after_modal = self.after_need = False
        self.plain_be = self.finite = self.imperative = self.preposition = False
        self.after_number = self.clause = False
        self.subject = False  # a subject stands before: an argument or a noun
        self.named_after_first = False  # an argument follows the first content word
        self.after_argument = False  # the word before was an argument
        self.generic = 0  # general verbs read ("process", "tell"): not terms, but words
        self.last_verb: int | None = None  # index in ``words`` of a verb head just read

    def run(self) -> Read:
        for index, word in enumerate(self.words):
            if index >= self.skip:
                self._step(index, word)
        read = self.read
        first = self.first
        opened = bool(self.words) and (first in _OPENING_WORDS or first in CONDITIONS)
        # "the fix is deployed", "the conference went virtual": a statement of fact, context
        # of the request beside it
        read.statement = (self.plain_be or self.finite) and not read.question and not opened
        read.statement = read.statement and not self.imperative and read.asked is None
        read.refers = (
            self.generic > 0
            and not read.terms
            and any(w.text.lower() in _REFERRING for w in self.words)
        )
        return read

    def _step(self, index: int, word: Word) -> None:
        lower = word.text.lower().replace("\u2019", "'")
        if lower.endswith("'s") and lower[:-2] in _IS_SUBJECTS and not self.after_modal:
            self.plain_be = True  # "she's the budget holder"
        lower = lower.removesuffix("'s")
        if index > 0 and (lower.endswith("n't") or lower == "cannot") and not self.imperative:
            self.plain_be = True  # "the owner can't make it", "the driver cannot find it"
        if self._phrasal(index, lower):
            return
        if not (lower in _OBJECT_PRONOUNS and self.last_verb == index - 1):
            self.last_verb = None  # "set them up": the particle may follow a pronoun
        if self._modal(index, word, lower):
            return
        if lower in _BE | _PERFECT and index > 0 and not self.after_modal:
            self.plain_be = self.plain_be or not self.first_content or self.subject
        if (
            self._that_clause(index, lower)
            or self._function_word(index, lower)
            or self._argument(index, word)
        ):
            return
        right_after_argument, self.after_argument = self.after_argument, False
        if self.clause:
            if (found := term(lower)) is not None:
                self.read.content.append(found)
            return
        self._content(index, lower, right_after_argument=right_after_argument)

    def _phrasal(self, index: int, lower: str) -> bool:
        read = self.read
        if (
            self.last_verb is not None
            and self.last_verb >= index - 2
            and lower in PARTICLES
            and read.terms
            and (compound := phrasal(read.terms[-1], lower)) is not None
        ):
            read.terms[-1] = compound  # "look up", "pay back": one verb
            self.last_verb = None
            return True
        return False

    def _modal(self, index: int, word: Word, lower: str) -> bool:
        obliged = (  # "APT-1 has to be cancelled": "has to" is "must"
            lower in _PERFECT
            and index + 1 < len(self.words)
            and self.words[index + 1].text.lower() == "to"
        )
        if not ((lower in _MODALS or obliged) and index > 0 and word.text.islower()):
            return False
        self.after_modal = True
        self.after_need = lower.startswith(("need", "want", "wish"))
        if self.read.verbish:
            self.read.verbish[0] = False  # "Ticket T-1 can be closed": a subject, not a verb
            self.imperative = False
        self.previous_content = False
        return True

    def _that_clause(self, index: int, lower: str) -> bool:
        read, words = self.read, self.words
        if (
            lower == "that"
            and read.terms
            and index + 1 < len(words)
            and words[index + 1].text.lower() in _CLAUSE_SUBJECTS
        ):
            # "tell the customer that their order has shipped": what to say, not a request;
            # "check that we have it in stock": what to check, the verb's object
            self.clause = True
            read.clause_object = len(read.terms) + self.generic == 1
            return True
        return False

    def _function_word(self, index: int, lower: str) -> bool:
        if not (lower in FUNCTION_WORDS or lower in _EXTRA_FUNCTION or "'" in lower):
            return False
        read = self.read
        self.after_argument = False
        if read.terms and (lower == "that" or lower not in _DETERMINERS | {"and", "or"}):
            self.preposition = True
        self.after_number = False
        self.after_determiner = lower in _DETERMINERS or (self.after_determiner and lower == "own")
        self.indefinite = lower in {"a", "an"}
        self.after_how = lower in {"how", "which", "what"}
        if (lower in WH_WORDS or (lower == "if" and self.generic)) and not read.terms and index > 0:
            read.question = True  # "find out which account manager ...", "see if ...": a question
        self.previous_content = False
        return True

    def _argument(self, index: int, word: Word) -> bool:
        inside = any(start <= word.start and word.end <= end for start, end in self.spans)
        if not (
            inside
            or index in self.names
            or _is_argument(word.text, index == self.skip, self.values)
        ):
            return False
        if inside and not self.first_content and past_form(word.text.lower()):
            self.finite = True  # "the mug arrived broken", with the reason as data
        self.after_determiner = self.after_how = self.previous_content = False
        self.after_number = any(ch.isdigit() for ch in word.text)
        self.subject = self.subject or self.first_content
        self.named_after_first = self.named_after_first or len(self.read.terms) == 1
        self.after_argument = True
        return True

    def _content(self, index: int, lower: str, *, right_after_argument: bool) -> None:
        read = self.read
        # in "Has invoice INV-1 been paid?" the first word is the subject, not a verb
        position = (
            self.first_content
            and not self.after_determiner
            and not self.subject
            and not read.question
            and self.first.split("'")[0] not in _WHAT  # "What's in booking BK-1?": a noun
        )
        found = term(lower, verb_position=position or self.after_modal)
        self.after_determiner = False
        if found is None:
            self.after_how = self.previous_content = False
            return
        if position and found.known and not found.verb and _verbed(self.words, index, self.values):
            found = as_verb(found)
        if (
            not position
            and not self.after_modal
            and (_finite(lower) if not self.first_content else self.subject and past_form(lower))
        ):
            self.finite = True  # "the conference went virtual"
            if (
                right_after_argument
                and self.named_after_first
                and len(read.terms) == 1
                and read.verbish[0]
            ):
                # "candidate CAND-1 starts on 2027-04-01": a subject, not a verb
                read.verbish[0] = self.imperative = False
        if position and past_form(lower) and not self._noun_follows(index):
            # "Something came up", "(born 1984-02-17)": what happened; not "translated
            # receipts", where the past form describes the noun after it
            self.finite = True
        elif position and (found.verb or not found.known):
            self.imperative = True
        if (position or self.after_modal) and found.lemma in GENERIC_VERBS:
            # "process the refund": the object says what is asked, and its first word is
            # not in verb position ("process order payment" is about a payment);
            # "wants to go on holiday" asks for the holiday.
            self.first_content = False
            self.previous_content = False
            self.generic += 1
            self.after_need = self.after_need or self.after_modal
            self.after_modal = False
            return
        self._append(index, found, position=position)

    def _noun_follows(self, index: int) -> bool:
        if index + 1 >= len(self.words):
            return False
        following = self.words[index + 1].text
        lower = following.lower()
        if lower in FUNCTION_WORDS or lower in PARTICLES:
            return False
        if _is_argument(following, first=False, values=self.values):
            return False
        return "NOUN" in readings(lower)

    def _append(self, index: int, found: Term, *, position: bool) -> None:
        read = self.read
        if (
            self.after_how or self.after_need or (self.after_modal and found.verb)
        ) and read.asked is None:
            read.asked = len(read.terms)  # "... needs a laptop" asks for the laptop
        self.after_need = False
        if (position or self.after_modal) and found.verb:
            self.last_verb = index  # "T-1 can be wrapped up": a phrasal verb after a modal too
        if self.after_modal and found.verb:
            self.after_modal = False
        read.terms.append(found)
        # a word the lexicon does not know, where a verb stands, is taken for one (a typo
        # of a verb must stay the part's head, not hand it to the object)
        read.verbish.append(position and (found.verb or not found.known))
        read.glued.append(self.previous_content)
        read.direct.append(not self.preposition)
        read.unit.append(self.after_number)
        read.indefinite.append(self.indefinite)
        self.after_number = False
        self.first_content = False
        self.previous_content = True
        self.after_how = False
