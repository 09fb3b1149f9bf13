"""Words as the offline planner reads them: lemmas, readings, word families, typos.

Lemmas come from `lemminflect <https://pypi.org/project/lemminflect/>`_, whose English
lexicon (derived from the SPECIALIST Lexicon) ships inside its wheel: nothing is downloaded
at run time. It knows every reading of a word, so a noun and a verb that share letters stay
apart: ``booking`` is the noun *booking* and, read as a verb, *book*. Which reading is the
word's own depends on where it stands: the first word of a clause is read as a verb when it
can be one ("book a hotel"), any other word as a noun first ("cancel my booking").

A :class:`Term` keeps that primary lemma, the lemmas of its other readings, and its word
*family*: the base that derivational suffixes were taken from, kept only when the lexicon
knows the base as a word (``notification`` → ``notify``, ``delivery`` → ``deliver``,
``payment`` → ``pay``, ``fraudulent`` → ``fraud``; ``sentiment`` keeps ``sentiment``
because there is no word *senti*). Matches through another reading or the family are
weaker than a match of the lemma itself (see :mod:`orra_planner.matching`).

The two small word lists here are grammar, not vocabulary: English function words, and the
handful of verbs and nouns so general that they never say which service an action wants
("process", "handle", "request").
"""

from __future__ import annotations

import dataclasses
import gzip
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib.resources import files
from typing import Final

import lemminflect

__all__ = [
    "CREATION_VERBS",
    "FUNCTION_WORDS",
    "GENERIC_NOUNS",
    "GENERIC_VERBS",
    "READING_VERBS",
    "RECORDING_VERBS",
    "WH_ASKS",
    "Term",
    "as_verb",
    "can_be_verb",
    "family",
    "is_known",
    "is_phrasal",
    "listed_by",
    "only_modifier",
    "past_form",
    "phrasal",
    "readings",
    "synonyms",
    "term",
    "warm",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


FUNCTION_WORDS: Final = _words(
    """
    a an the this that these those some any each every all both either neither no none i me
    my mine we us our ours you your yours he him his she her hers it its they them their
    theirs one ones someone something anyone anything everyone everything who whom whose
    which what whatever whichever where when why how whether and or but nor so yet then
    also too plus either else than as of for to from with without within into onto in on at
    by about over under via per through across around between among against along toward
    towards upon out off up down is are was were be been being am do does did done doing
    have has had having can could should would will shall may might must ought not never
    only just very really quite rather still even again already now please kindly thanks
    thank ok okay if unless until while once after before because since though although
    whereas there here s pls plz thx
    """
)
"""Closed-class English words: they carry grammar, never a request."""

GENERIC_VERBS: Final = _words(
    """
    process handle perform execute run do make get take manage deal carry complete start
    trigger initiate go need want like try help let see put give ensure make sure use
    update arrange proceed continue finish find figure tell show know
    pull fetch retrieve grab bring view display
    """
)
"""Verbs so general that the words after them say what is wanted ("process a refund")."""

GENERIC_NOUNS: Final = _words(
    """
    request requests task tasks action actions service services job jobs thing things stuff
    process step steps operation operations something way
    """
)
"""Nouns that name no capability of their own ("refund request" asks for a refund)."""

RECORDING_VERBS: Final = _words("file lodge raise register submit report")
"""Verbs that put on record what their object names: a *light verb* with an event noun
("log a cancellation", "raise a repair job") asks for the event itself (cancel, repair).
Read so only when no service does the verb itself with that object, and only for a new
object ("a", "an") that names a doing (a verb, or a noun derived from one): "report the
tenant" is not read as a tenant, nor "raise the rent" as the rent. The class is English
grammar (light-verb constructions with verbs of recording), not a domain's vocabulary.
Verbs of bookkeeping ("log", "record", "note", "enter") are left out: they note what has
already happened, so "log a payment" must not run the service that pays."""

CREATION_VERBS: Final = _words("write draft compose create generate make prepare produce")
"""Verbs of creation: a service whose description opens with one ("Writes a suggested
answer") makes something new, so it answers no question about what exists already ("what
did the customer's last reply say?"), only one that asks it to make it. English grammar
(verbs of creation), not a domain's vocabulary."""

READING_VERBS: Final = _words("read check review verify inspect")
"""Verbs that ask to read what their object names: "read the latest message", "check the
arrears on the lease" ask what the message or the arrears are, a question. Read so only
when no service does the verb itself with that object (``InventoryService`` checks
stock). Other verbs of seeing ("show", "view", "see") are already :data:`GENERIC_VERBS`."""

WH_ASKS: Final = {
    "where": _words("location place address position whereabouts"),
    "when": _words("date time day"),
    "who": _words("name person owner contact"),
}
"""What a question opening with each wh-word asks for: a place, a time, a person. Grammar
of English questions, so a question every service of a thing matches ("Where's TRK-1?")
goes to the one whose output tells that kind of thing."""

_VERB_TAGS: Final = ("VERB",)
_NOUN_FIRST: Final = ("NOUN", "PROPN", "ADJ", "VERB", "ADV", "AUX")
_VERB_FIRST: Final = ("VERB", "NOUN", "PROPN", "ADJ", "ADV", "AUX")
_MODIFIER_TAGS: Final = frozenset({"ADJ", "ADV"})

# Derivational suffixes and what they came from; a base counts only when the lexicon knows
# it as a word, so the rules can be generous without inventing words.
_DERIVATIONS: Final = (
    ("ification", "ify"),
    ("ication", "icate"),
    ("lation", ""),
    ("tration", "ter"),
    ("iation", "e"),
    ("ation", "ate"),
    ("ation", "e"),
    ("ation", ""),
    ("ition", "ite"),
    ("sion", "de"),
    ("sion", "se"),
    ("tion", "te"),
    ("ion", "e"),
    ("ion", ""),
    ("ysis", "yze"),
    ("ysis", "yse"),
    ("ments", ""),
    ("ment", ""),
    ("ance", ""),
    ("ance", "e"),
    ("ence", ""),
    ("ence", "e"),
    ("ulent", ""),
    ("ary", "arize"),
    ("able", ""),
    ("able", "e"),
    ("ible", ""),
    ("ive", ""),
    ("ive", "e"),
    ("ness", ""),
    ("ier", "y"),
    ("er", "e"),
    ("er", ""),
    ("or", "e"),
    ("or", ""),
    ("al", "e"),
    ("al", ""),
    ("ing", ""),
    ("ing", "e"),
    ("ery", "er"),
    ("ure", ""),
    ("ure", "e"),
    ("y", ""),
)
_MIN_BASE: Final = 3
_SPELLING: Final = ((re.compile(r"(?<=[a-z]{2})is(e|ed|es|ing|ation)$"), r"iz\1"),)
"""British -ise spellings read as -ize (summarise → summarize), so both spellings meet."""


@dataclass(frozen=True, slots=True)
class Term:
    """One content word as the matcher compares it.

    Attributes:
        word: The word, lower-case, as written.
        lemma: The lemma of its primary reading.
        alts: Lemmas of its other readings (``booking`` read as a noun: ``book``).
        family: The derivational base of ``lemma`` (``notification`` → ``notify``).
        verb: Whether its primary reading is a verb.
        modifier: Whether it can only be an adjective or adverb ("new", "optimal").
        known: Whether the lexicon knows the word (an unknown one may be a typo).
    """

    word: str
    lemma: str
    alts: tuple[str, ...]
    family: str
    verb: bool
    modifier: bool
    known: bool


def _spelled(word: str) -> str:
    for pattern, replacement in _SPELLING:
        word = pattern.sub(replacement, word)
    return word


@lru_cache(maxsize=65_536)
def readings(word: str) -> dict[str, str]:
    """The lexicon's readings of a lower-case word: part of speech → lemma (empty: unknown)."""
    found = lemminflect.getAllLemmas(word)
    if not found and (respelled := _spelled(word)) != word:
        found = lemminflect.getAllLemmas(respelled)
    return {tag: lemmas[0] for tag, lemmas in found.items() if lemmas}


def is_known(word: str) -> bool:
    """Whether the lexicon knows ``word`` (lower-case) as an English word."""
    return bool(readings(word))


def can_be_verb(word: str) -> bool:
    """Whether ``word`` (lower-case) has a verb reading."""
    return "VERB" in readings(word)


@lru_cache(maxsize=65_536)
def past_form(word: str) -> bool:
    """Whether ``word`` (lower-case) is only a past form of a verb ("arrived", "came").

    Never a verb's own base form too ("found", "set", "read"): an instruction opens with a
    base form, so a clause whose verb is past states what happened.
    """
    lemmas = lemminflect.getAllLemmas(word).get("VERB", ())
    if not lemmas or word in lemmas:
        return False
    return any(
        word in (*lemminflect.getInflection(lemma, "VBD"), *lemminflect.getInflection(lemma, "VBN"))
        for lemma in lemmas
    )


def only_modifier(word: str) -> bool:
    """Whether ``word`` can only be an adjective or adverb ("optimal", "quickly")."""
    tags = set(readings(word))
    return bool(tags) and tags <= _MODIFIER_TAGS


def _base_word(candidate: str) -> bool:
    if len(candidate) < _MIN_BASE:
        return False
    found = readings(candidate)
    return candidate in found.values()


@lru_cache(maxsize=65_536)
def family(lemma: str) -> str:
    """The derivational base of ``lemma`` that the lexicon knows, or ``lemma`` itself.

    Two rounds at most (``notifications`` → ``notification`` → ``notify``).
    """
    current = _spelled(lemma)
    for _ in range(2):
        for suffix, replacement in _DERIVATIONS:
            if not current.endswith(suffix) or len(current) - len(suffix) < 2:
                continue
            candidate = current[: -len(suffix)] + replacement
            if candidate != current and _base_word(candidate):
                current = _spelled(candidate)
                break
        else:
            break
    return current


def _oov_lemma(word: str) -> str:
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=65_536)
def term(word: str, *, verb_position: bool = False) -> Term | None:
    """The :class:`Term` of a lower-case word; ``None`` for a function word.

    Args:
        word: The word, lower-case.
        verb_position: Whether the word opens a clause, where a verb reading comes first.
    """
    if word in FUNCTION_WORDS or len(word) < 2:
        return None
    found = readings(word)
    if not found:
        if is_phrasal(word):  # "sign-off" read as one word: WordNet's phrasal verb
            return Term(word, word, (), word, verb=verb_position, modifier=False, known=True)
        lemma = _oov_lemma(word)
        base = family(lemma)
        return Term(word, lemma, (), base, verb=False, modifier=False, known=base != lemma)
    order = _VERB_FIRST if verb_position else _NOUN_FIRST
    tag = next(t for t in order if t in found) if any(t in found for t in order) else None
    lemma = found[tag] if tag is not None else next(iter(found.values()))
    alts = tuple(sorted({v for v in found.values() if v != lemma}))
    return Term(
        word=word,
        lemma=lemma,
        alts=alts,
        family=family(lemma),
        verb=tag in _VERB_TAGS,
        modifier=set(found) <= _MODIFIER_TAGS,
        known=True,
    )


def as_verb(found: Term) -> Term:
    """``found`` read as a verb: a noun opening an instruction ("text the customer")."""
    return dataclasses.replace(found, verb=True)


def phrasal(verb: Term, particle: str) -> Term | None:
    """The phrasal verb of ``verb`` and ``particle``, one word (``look up`` → ``lookup``).

    A phrasal verb means something of its own: "pay back" is not "pay", "look up" is what
    an ``InvoiceLookup`` does. ``None`` when the verb is too general to say anything
    ("pull up", "find out": the object says what is asked).
    """
    if verb.lemma in GENERIC_VERBS:
        return None
    lemma = verb.lemma + particle
    return Term(f"{verb.word} {particle}", lemma, (), lemma, verb=True, modifier=False, known=True)


@cache
def _synonym_table() -> dict[str, tuple[str, ...]]:
    raw = files("orra_planner").joinpath("data/synonyms.txt.gz").read_bytes()
    table: dict[str, tuple[str, ...]] = {}
    for line in gzip.decompress(raw).decode().splitlines():
        if line and not line.startswith("#"):
            word, *others = line.split(" ")
            table[word] = tuple(others)
    return table


def synonyms(lemma: str) -> tuple[str, ...]:
    """The other words of ``lemma``'s most frequent sense, from WordNet 3.1.

    ``holiday`` → ``vacation``, ``cancel`` → ``calloff``, ``scratch``, ``scrub``. Only first
    senses: a rarer sense ("charge" as accusing) says nothing of what a user asks for. A
    phrasal verb, an idiom with no words of its own, has its two first senses and, for a
    sense with no plain word, what that sense is a kind of (``wrapup`` → ``finish``).
    The table (``orra_planner/data/synonyms.txt.gz``, built by
    ``services/planner/tools/wordnet_synonyms.py``) ships in the package.
    """
    return _synonym_table().get(lemma, ())


_PARTICLES: Final = ("up", "off", "back", "out", "down", "away", "over", "aside")
"""The particles of the phrasal verbs in the synonym table (as its build script keeps)."""


def is_phrasal(joined: str) -> bool:
    """Whether WordNet knows ``joined`` as a phrasal verb (``kitout``, ``signoff``)."""
    if not any(joined.endswith(p) and len(joined) > len(p) + 1 for p in _PARTICLES):
        return False  # "kg" is a word of WordNet's, not a verb and its particle
    return joined in _synonym_table() or joined in _listed_by()


@cache
def _listed_by() -> dict[str, tuple[str, ...]]:
    listing: dict[str, list[str]] = {}
    for word, others in _synonym_table().items():
        for other in others:
            listing.setdefault(other, []).append(word)
    return {word: tuple(words) for word, words in listing.items()}


def listed_by(word: str) -> tuple[str, ...]:
    """The words whose :func:`synonyms` include ``word`` (the table read backwards)."""
    return _listed_by().get(word, ())


def warm() -> None:
    """Load the lexicon's tables now (they load on first use otherwise, about a second)."""
    readings("warm")
    lemminflect.getAllInflections("warm")
    _listed_by()
