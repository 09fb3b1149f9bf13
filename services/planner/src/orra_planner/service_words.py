"""What each registered service says it does, as words: :class:`ServiceWords`.

The words of a service's name, its example phrases, its description and (weakly) its field
names, each as lemmas and word families, with the strength of each; the verbs that the
catalogue's examples teach (:func:`with_taught`). :mod:`orra_planner.matching` scores an
action's parts against them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Final

from orra_planner.lexicon import (
    CREATION_VERBS,
    GENERIC_NOUNS,
    Term,
    family,
    listed_by,
    past_form,
    readings,
    synonyms,
    term,
)
from orra_planner.parts import split_action
from orra_planner.text import GENERIC_NAME_WORDS, split_words

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from orra_planner.parts import Part
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = [
    "KIN",
    "READING",
    "SYNONYM",
    "TAUGHT",
    "VERB_EVIDENCE",
    "WEAK",
    "ServiceWords",
    "field_key",
    "with_taught",
    "words_of",
]

READING: Final = frozenset({"lookup", "search", "find", "fetch", "get", "list", "view", "read"})
"""What a service's name says it does when it only reads (``OrderLookup``, ``FlightSearch``)."""
WEAK: Final = 0.6
"""Strength of a match through another reading or the word family."""
SYNONYM: Final = 0.5
"""Factor on the strength of a match through a synonym (:func:`~orra_planner.lexicon.synonyms`)."""
KIN: Final = 0.45
"""Factor on the strength of a match through a synonym shared with a service's word
(``pay back`` and ``refund`` both mean *repay*): a little weaker than a direct synonym."""
TAUGHT: Final = 0.5
"""Strength of a verb the catalogue's examples teach for what a service does."""
_NAME: Final = 1.0
_EXAMPLES: Final = 0.9
_DESCRIPTION: Final = 0.6
_FIELDS: Final = 0.3
VERB_EVIDENCE: Final = _DESCRIPTION * WEAK + 0.01
"""A verb asked for is served only on more evidence than a related word of a description."""
_FIELD_NOISE: Final = frozenset({"id", "ids", "key", "uuid", "ref", "no", "num"})


@lru_cache(maxsize=8192)  # field names repeat: every plan compares each schema's fields
def field_key(name: str) -> str:
    """A field name compared case-, ``_``- and ``-``-insensitively (``order_id`` = ``orderId``)."""
    return "".join(ch for ch in name.lower() if ch.isalnum())


@dataclass(frozen=True)
class ServiceWords:
    """What one service says it does, as lemmas and families with their strengths.

    Attributes:
        name: The service.
        lemmas: Lemma → strength, from its name, examples and description.
        families: Word family → strength, from the same.
        fields: Lemma or family → strength, from its input and output field names.
        inputs: Its input field names, as :func:`field_key` compares them.
        answers: Lemma or family → strength, from what its output says: field names, the
            values of enumerations ("paid"), descriptions. A question is answered by a
            service whose output has the asked word.
        outputs: Lemmas of its output field names that are values, not ids
            (``trackingNumber``: tracking, number; not ``customerId``).
        mentions: Verbs its description mentions after its first word and that its name,
            examples and description never have as anything else ("paid" in "so that it
            can be paid").
        acts: Lemma or family → strength, from what it says it does: its name, its
            examples, and its description's opening verb and that verb's objects ("Sends
            a bank transfer"); not the rest of its description ("the shipping address").
            A verb asked for is matched against these.
        taught: Verbs the catalogue's examples teach for what it does (:func:`with_taught`).
        named: Lemma → strength, from its name and examples only: the words its author
            chose to say what it does. A synonym matches these, never the description,
            whose "Returns a ticket's status" is not a refund.
        does: The verb its name opens with (``PaySupplier`` → ``pay``): the thing it does,
            which a question about that thing ("has it been paid?") does not ask to do.
        makes: The verb of creation its description opens with (``DraftReply``, "Writes a
            suggested answer" → ``write``): what it answers is what it makes, never a
            question about something that exists already.
        action: The verb its name starts with when its description starts with it too
            (``CancelBooking``, "Cancels a booking"): what it does to what it names.
    """

    name: str
    lemmas: Mapping[str, float]
    families: Mapping[str, float]
    fields: Mapping[str, float]
    inputs: frozenset[str]
    action: str | None = None
    answers: Mapping[str, float] = field(default_factory=dict)
    does: str | None = None
    makes: str | None = None
    named: Mapping[str, float] = field(default_factory=dict)
    taught: frozenset[str] = frozenset()
    acts: Mapping[str, float] = field(default_factory=dict)
    mentions: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()
    kin: Mapping[str, float] = field(default_factory=dict)
    """A user's lemma → the strength of its match through synonyms (:func:`_kin`)."""
    reads: bool = False
    """Whether its name says it reads and changes nothing (``OrderLookup``, ``HotelSearch``)."""

    def strength(self, word: Term, *, claims_only: bool = False) -> float:
        """How strongly ``word`` matches this service (0: not at all).

        Args:
            word: A word of the action.
            claims_only: Count only what the service says it does (name, examples,
                description), not its field names.
        """
        return max(self.own(word, claims_only=claims_only), self.kin.get(word.lemma, 0.0))

    def own(self, word: Term, *, claims_only: bool = False) -> float:
        """:meth:`strength` without synonyms: how strongly the service has ``word`` itself."""
        best = self.lemmas.get(word.lemma, 0.0)
        for alt in word.alts:
            best = max(best, self.lemmas.get(alt, 0.0) * WEAK, self.families.get(alt, 0.0) * WEAK)
        best = max(best, self.families.get(word.family, 0.0) * WEAK)
        if not claims_only:
            best = max(best, self.fields.get(word.lemma, 0.0), self.fields.get(word.family, 0.0))
        return best

    def acting(self, word: Term) -> float:
        """How strongly the verb ``word`` is what this service says it does (0: not)."""
        return max(self.own_act(word), self.kin.get(word.lemma, 0.0))

    def own_act(self, word: Term) -> float:
        """:meth:`acting` without synonyms."""
        best = max(self.acts.get(word.lemma, 0.0), self.acts.get(word.family, 0.0) * WEAK)
        for alt in word.alts:
            best = max(best, self.acts.get(alt, 0.0) * WEAK)
        if word.lemma in self.taught:
            best = max(best, TAUGHT)
        return best

    def may_do(self, head: Term, *, verb: bool) -> bool:
        """Whether this service may serve a request whose head is ``head``.

        A service whose name says what it does (``ApproveInvoice``) does not do an action
        its description only mentions ("so that it can be paid"); what it makes ("Sends a
        bank transfer") or what its name and examples say it does, it does.
        """
        if not verb or self.does is None or head.lemma == self.does:
            return True
        return head.lemma not in self.mentions

    def answers_question(self, asked: Collection[str], words: Iterable[Term]) -> bool:
        """Whether this service may answer a question whose head reads ``asked``.

        A question asks to read something: "has it been paid?" asks whether, not to pay,
        and a service whose name says what it does (``PaySupplier``) answers a question
        only when its output tells one of the question's ``words``: "which supplier sent
        invoice INV-1?" never pays the supplier.
        """
        if self.makes is not None and self.does is None:
            return self.makes in asked
        if self.does is None:
            return True
        return self.does not in asked and any(self.answer(w) > 0.0 for w in words)

    def answer(self, word: Term) -> float:
        """How strongly the output of this service tells ``word`` (0: not at all)."""
        best = max(self.answers.get(word.lemma, 0.0), self.answers.get(word.family, 0.0) * WEAK)
        for alt in word.alts:
            best = max(best, self.answers.get(alt, 0.0) * WEAK)
        return best


def _add(into: dict[str, float], key: str, strength: float) -> None:
    if strength > into.get(key, 0.0):
        into[key] = strength


def _text_terms(text: str) -> Iterable[Term]:
    for part in split_action(text):
        yield from part.terms


def _said_to_do(description: str) -> list[Term]:
    """What a description says a service does: its clauses' heads and verbs' objects.

    "Checks product stock and reserves inventory" → check, stock, reserve, inventory; not
    the "shipping address" a fraud check scores a risk from.
    """
    found: list[Term] = []
    for piece in split_action(description):
        head = piece.head_term
        if head is None:
            if _done_to_it(description, piece):
                found.append(piece.terms[0])
            continue
        found.append(head)
        found.extend(piece.terms[i] for i in piece.objects)
    return found


def _done_to_it(description: str, piece: Part) -> bool:
    """Whether ``piece`` is a participle clause after a comma: what the service does to it.

    "Orders and configures a laptop for an employee, shipped to their home": the laptop is
    shipped by the service; not "so that it can be paid", a clause of its own.
    """
    first = piece.terms[0] if piece.terms else None
    return (
        first is not None
        and first.verb
        and piece.text.split(maxsplit=1)[0].lower() == first.word
        and past_form(first.word)
        and description[: piece.start].rstrip().endswith(",")
    )


def _name_terms(name: str) -> Iterable[Term]:
    words = [w for w in split_words(name) if w not in GENERIC_NAME_WORDS]
    for index, word in enumerate(words):
        found = term(word, verb_position=index == 0)
        if found is not None:
            yield found


def words_of(spec: ServiceSpec) -> ServiceWords:
    """The words of ``spec`` (name, examples, description, field names) and their strength."""
    lemmas: dict[str, float] = {}
    families: dict[str, float] = {}
    sources: list[tuple[Iterable[Term], float]] = [
        (_name_terms(spec.name), _NAME),
        *((_text_terms(example), _EXAMPLES) for example in spec.examples),
        (_text_terms(spec.description), _DESCRIPTION),
    ]
    named: dict[str, float] = {}
    acts: dict[str, float] = {}
    for terms, weight in [
        (_name_terms(spec.name), _NAME),
        *((_text_terms(example), _EXAMPLES) for example in spec.examples),
        (_said_to_do(spec.description), _DESCRIPTION),
    ]:
        for found in terms:
            _add(acts, found.lemma, weight)
            _add(acts, found.family, weight * WEAK)
            for alt in found.alts:
                _add(acts, alt, weight * WEAK)
    described = list(_text_terms(spec.description))
    verbs = {t.lemma for t in described[1:] if t.verb}
    others = {t.lemma for t in described if not t.verb} | {t.lemma for t in described[:1]}
    mentions = verbs - others
    for terms, weight in sources:
        for found in terms:
            if found.lemma in GENERIC_NOUNS and weight < _NAME:
                continue  # "a support request" says nothing; RequestLeave's name does
            _add(lemmas, found.lemma, weight)
            if weight >= _EXAMPLES:
                _add(named, found.lemma, weight)
            for alt in found.alts:
                _add(lemmas, alt, weight * WEAK)
            _add(families, found.family, weight)
    fields: dict[str, float] = {}
    for field_name in (*spec.inputs, *spec.outputs):
        for word in split_words(field_name):
            field_term = term(word)
            if field_term is None or word in _FIELD_NOISE:
                continue
            _add(fields, field_term.lemma, _FIELDS)
            _add(fields, field_term.family, _FIELDS * WEAK)
    return ServiceWords(
        name=spec.name,
        lemmas=lemmas,
        families=families,
        fields=fields,
        inputs=frozenset(field_key(n) for n in spec.inputs),
        action=_action_verb(spec),
        answers=_answer_words(spec),
        named=named,
        kin=_kin(named, _capability_word(spec)),
        acts=acts,
        mentions=frozenset(m for m in mentions if m not in named),
        outputs=frozenset(
            t.lemma
            for name in spec.outputs
            if split_words(name)[-1:] and split_words(name)[-1] not in _FIELD_NOISE
            for word in split_words(name)
            if (t := term(word)) is not None
        ),
        does=_does(spec),
        makes=_makes(spec),
        reads=_capability_word(spec) in READING,
    )


def _capability_word(spec: ServiceSpec) -> str | None:
    """The word of ``spec``'s name that says what it does (see :func:`_capability`)."""
    does = _does(spec)
    if does is not None:
        return does
    names = list(_name_terms(spec.name))
    return names[-1].lemma if names else None


def _kin(named: Mapping[str, float], capability: str | None) -> dict[str, float]:
    """The words that match a service's own words (name, examples) through synonyms.

    Worked out once per catalogue, so a word of an action costs one look-up: a word one of
    whose synonyms is the service's (``vacation`` for ``holiday``) matches at
    :data:`SYNONYM` of its strength. The word of its name that says what it does
    (``refund`` of ``RefundService``) goes further: a synonym of it matches at
    :data:`SYNONYM` too, and a word that shares a synonym with it (``pay back`` and
    ``refund`` both mean *repay*) at :data:`KIN`. Other words do not: an example's "take"
    or "show" has senses enough to match anything.
    """
    found: dict[str, float] = {}
    for word, strength in named.items():
        for other in listed_by(word):
            _add(found, other, strength * SYNONYM)
        if (base := family(word)) != word:
            for other in listed_by(base):  # "kit out" means *equip*, the verb of "equipment"
                _add(found, other, strength * SYNONYM)
        if word != capability:
            continue  # "take" of an example, "close" of a name: senses enough to match anything
        for other in synonyms(word):
            _add(found, other, strength * SYNONYM)
        for shared in synonyms(word):
            for other in listed_by(shared):
                _add(found, other, strength * KIN)
    for word in named:
        found.pop(word, None)
    return found


def _does(spec: ServiceSpec) -> str | None:
    """The verb opening ``spec``'s name, when it is only a verb or a phrase opens with it.

    ``PaySupplier`` ("pay the supplier") does pay; ``InvoiceLookup`` does not invoice,
    though "invoice" can be a verb: none of its phrases says so. ``SendReply`` sends,
    whatever its description opens with ("Posts a reply"): "send" is no noun.
    """
    names = list(_name_terms(spec.name))
    if len(names) < 2 or not names[0].verb:
        return None
    if set(readings(names[0].lemma)) == {"VERB"}:
        return names[0].lemma
    for text in (spec.description, *spec.examples):
        opening = next(iter(_text_terms(text)), None)
        if (
            opening is not None
            and opening.verb
            and opening.lemma == names[0].lemma
            and not _noun_compound(text)
        ):
            return opening.lemma
    return None


def _makes(spec: ServiceSpec) -> str | None:
    """The verb of creation ``spec``'s description opens with (see :data:`CREATION_VERBS`)."""
    opening = next(iter(_text_terms(spec.description)), None)
    if opening is not None and opening.verb and opening.lemma in CREATION_VERBS:
        return opening.lemma
    return None


def _noun_compound(text: str) -> bool:
    """Whether ``text`` opens with a noun that can be a verb before another noun.

    "rent statement for a lease" names a statement; "pay the supplier", "approve invoice"
    (``approve`` is only a verb) say what to do.
    """
    words = text.lower().split()
    if len(words) < 2 or "NOUN" not in readings(words[0]):
        return False
    return term(words[1]) is not None and not words[1].endswith("ing")


def _answer_words(spec: ServiceSpec) -> dict[str, float]:
    """What the output of ``spec`` tells: its field names, enumerated values, descriptions."""
    found: dict[str, float] = {}
    for name, node in spec.outputs.items():
        texts = [" ".join(split_words(name))]
        if isinstance(node, Mapping):
            texts.extend(str(v) for v in node.get("enum", ()) if isinstance(v, str))
            if isinstance(node.get("description"), str):
                texts.append(node["description"])
        for text in texts:
            for found_term in _text_terms(text):
                if found_term.lemma in GENERIC_NOUNS or found_term.word in _FIELD_NOISE:
                    continue
                _add(found, found_term.lemma, _NAME)
                _add(found, found_term.family, _NAME * WEAK)
                for alt in found_term.alts:
                    _add(found, alt, _NAME * WEAK)
    return found


def _action_verb(spec: ServiceSpec) -> str | None:
    names = list(_name_terms(spec.name))
    said = next(iter(_text_terms(spec.description)), None)
    if len(names) < 2 or said is None or not said.verb or not names[0].verb:
        return None
    return said.lemma if said.lemma == names[0].lemma else None


def _capability(spec: ServiceSpec, words: ServiceWords) -> str | None:
    """What ``spec`` does, in one word: the verb its name opens with, else its last word.

    ``CancelBooking`` → cancel, ``FlightSearch`` → search, ``InvoiceLookup`` → lookup.
    """
    if words.does is not None:
        return words.does
    names = list(_name_terms(spec.name))
    return names[-1].lemma if names else None


def with_taught(
    services: dict[str, ServiceWords], catalog: ServiceCatalog
) -> dict[str, ServiceWords]:
    """Every service with the verbs that the catalogue's examples teach for what it does.

    When the examples of two services or more that do the same thing open with the same
    verb ("look for a plane ticket" of ``FlightSearch``, "look for accommodation" of
    ``HotelSearch``), their authors teach that the verb means that thing: every service
    that does it (``CarRentalSearch``) has the verb, at :data:`TAUGHT` strength.
    """
    capability = {name: _capability(catalog[name], words) for name, words in services.items()}
    teachers: dict[tuple[str, str], set[str]] = {}
    for name, spec in catalog.items():
        does = capability[name]
        for example in spec.examples:
            opening = next(iter(_text_terms(example)), None)
            if does is None or opening is None or not opening.verb or opening.lemma == does:
                continue
            teachers.setdefault((opening.lemma, does), set()).add(name)
    out = dict(services)
    for (verb, does), taught_by in teachers.items():
        if len(taught_by) < 2:
            continue
        for name, words in services.items():
            if capability[name] == does and words.lemmas.get(verb, 0.0) < TAUGHT:
                lemmas = {**out[name].lemmas, verb: TAUGHT}
                taught = out[name].taught | {verb}
                out[name] = dataclasses.replace(out[name], lemmas=lemmas, taught=taught)
    return out
