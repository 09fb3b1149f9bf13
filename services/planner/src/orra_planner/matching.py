"""Which registered services serve which part of an action.

A catalogue's :class:`Vocabulary` (built once per catalogue) holds, for every service, the
words of its **name**, its **example phrases**, its **description** and, weakly, its field
names, each as lemmas and word families (:mod:`orra_planner.lexicon`). A word of the action
matches a service's word

* exactly (same lemma): full strength;
* through another reading (``booking`` the noun and ``book`` the verb) or through its word
  family (``notify`` and ``notification``): :data:`WEAK` of it;
* after a typo is corrected: a word the lexicon does not know, within a small edit distance
  (one edit up to 7 letters, two from 8) of exactly one word of the catalogue, counts as
  that word at :data:`TYPO` of its strength.

Where it matched weighs too: name 1, examples 0.9, description 0.6, field names 0.3 (a
field name never makes a service serve a part: "order" of ``orderId`` is what an action is
about, not what to do).

:func:`match_part` scores the services that match a part's **head** (only those can serve
it): the sum over the part's words of strength x weight of the word's role (head 2,
modifier 0.5, other 1, borrowed 0.5) x how rare the word is among the services (a word
every service has says little: ``ln(1 + N / services having it)``), plus a little for each
data field the service takes. The services within :data:`BAND` of the best score serve the
part: a word shared by several services selects among them by the rest of the part and the
data, never all of them by itself. When the band holds more than half of the catalogue's
services, the part says too little to choose ("process the order" where every service
handles orders): it is *vague*, and nothing serves it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from rapidfuzz.distance import OSA, Indel
from rapidfuzz.process import extract

from orra_planner.lexicon import GENERIC_NOUNS, Term, synonyms, term
from orra_planner.parts import Part, data_fields, data_values, request_parts, split_action
from orra_planner.text import GENERIC_NAME_WORDS, split_words

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from orra_events import DataField
    from orra_planner.registry import ServiceCatalog, ServiceSpec

__all__ = [
    "BAND",
    "SYNONYM",
    "TAUGHT",
    "TYPO",
    "WEAK",
    "PartMatch",
    "ServiceWords",
    "Vocabulary",
    "field_key",
    "match_part",
    "plain_servers",
    "vocabulary",
]

WEAK: Final = 0.6
"""Strength of a match through another reading or the word family."""
TYPO: Final = 0.9
"""Factor on the strength of a match of a corrected typo."""
SYNONYM: Final = 0.5
"""Factor on the strength of a match through a synonym (:func:`~orra_planner.lexicon.synonyms`)."""
TAUGHT: Final = 0.5
"""Strength of a verb the catalogue's examples teach for what a service does."""
BAND: Final = 0.8
"""Services scoring at least this fraction of the best serve the part with it."""

_NAME: Final = 1.0
_EXAMPLES: Final = 0.9
_DESCRIPTION: Final = 0.6
_FIELDS: Final = 0.3
_ROLE_HEAD: Final = 2.0
_ROLE_MODIFIER: Final = 0.5
_ROLE_OTHER: Final = 1.0
_ROLE_BORROWED: Final = 0.5
_DATA_BONUS: Final = 0.1
_VERB_EVIDENCE: Final = _DESCRIPTION * WEAK + 0.01
"""A verb asked for is served only on more evidence than a related word of a description."""
_FIELD_NOISE: Final = frozenset({"id", "ids", "key", "uuid", "ref", "no", "num"})
_MIN_TYPO_LEN: Final = 4
_LONG_WORD: Final = 8
_VAGUE_FROM: Final = 3
_MEMO: Final = 16_384


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
        taught: Verbs the catalogue's examples teach for what it does (:func:`_taught`).
        named: Lemma → strength, from its name and examples only: the words its author
            chose to say what it does. A synonym matches these, never the description,
            whose "Returns a ticket's status" is not a refund.
        does: The verb its name opens with (``PaySupplier`` → ``pay``): the thing it does,
            which a question about that thing ("has it been paid?") does not ask to do.
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
    named: Mapping[str, float] = field(default_factory=dict)
    taught: frozenset[str] = frozenset()
    acts: Mapping[str, float] = field(default_factory=dict)
    mentions: frozenset[str] = frozenset()
    outputs: frozenset[str] = frozenset()

    def strength(self, word: Term, *, claims_only: bool = False) -> float:
        """How strongly ``word`` matches this service (0: not at all).

        Args:
            word: A word of the action.
            claims_only: Count only what the service says it does (name, examples,
                description), not its field names.
        """
        best = self.lemmas.get(word.lemma, 0.0)
        for synonym in synonyms(word.lemma):
            best = max(best, self.named.get(synonym, 0.0) * SYNONYM)
        for alt in word.alts:
            best = max(best, self.lemmas.get(alt, 0.0) * WEAK, self.families.get(alt, 0.0) * WEAK)
        best = max(best, self.families.get(word.family, 0.0) * WEAK)
        if not claims_only:
            best = max(best, self.fields.get(word.lemma, 0.0), self.fields.get(word.family, 0.0))
        return best

    def acting(self, word: Term) -> float:
        """How strongly the verb ``word`` is what this service says it does (0: not)."""
        best = max(self.acts.get(word.lemma, 0.0), self.acts.get(word.family, 0.0) * WEAK)
        for alt in word.alts:
            best = max(best, self.acts.get(alt, 0.0) * WEAK)
        if word.lemma in self.taught:
            best = max(best, TAUGHT)
        for synonym in synonyms(word.lemma):
            best = max(best, self.named.get(synonym, 0.0) * SYNONYM)
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
            continue
        found.append(head)
        found.extend(piece.terms[i] for i in piece.objects)
    return found


def _name_terms(name: str) -> Iterable[Term]:
    words = [w for w in split_words(name) if w not in GENERIC_NAME_WORDS]
    for index, word in enumerate(words):
        found = term(word, verb_position=index == 0)
        if found is not None:
            yield found


def _service_words(spec: ServiceSpec) -> ServiceWords:
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
    )


def _does(spec: ServiceSpec) -> str | None:
    """The verb opening ``spec``'s name when its description or an example opens with it.

    ``PaySupplier`` ("pay the supplier") does pay; ``InvoiceLookup`` does not invoice,
    though "invoice" can be a verb: none of its phrases says so.
    """
    names = list(_name_terms(spec.name))
    if len(names) < 2 or not names[0].verb:
        return None
    for text in (spec.description, *spec.examples):
        opening = next(iter(_text_terms(text)), None)
        if opening is not None and opening.verb and opening.lemma == names[0].lemma:
            return opening.lemma
    return None


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


def _taught(services: dict[str, ServiceWords], catalog: ServiceCatalog) -> dict[str, ServiceWords]:
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


class Vocabulary:
    """Every service's words, and the catalogue's words for typo correction.

    Built once per catalogue (:func:`vocabulary`); what it learns about a word (its
    correction) is remembered for the catalogue's lifetime.
    """

    def __init__(self, catalog: ServiceCatalog) -> None:
        self.services: dict[str, ServiceWords] = _taught(
            {name: _service_words(spec) for name, spec in catalog.items()}, catalog
        )
        by_word: dict[str, str] = {}
        for words in self.services.values():
            for lemma in (*words.lemmas, *words.families):
                if len(lemma) >= _MIN_TYPO_LEN:
                    by_word.setdefault(lemma, lemma)
        for name, spec in catalog.items():
            for text in (name, spec.description, *spec.examples):
                for word in split_words(text):
                    if len(word) >= _MIN_TYPO_LEN and term(word) is not None:
                        by_word.setdefault(word, word)
        self._words = sorted(by_word)
        self._known = frozenset(
            key for words in self.services.values() for key in (*words.lemmas, *words.families)
        )
        self._corrections: dict[str, Term | None] = {}
        self._passed: dict[str, frozenset[str]] | None = None
        self._rarity: dict[Term, float] = {}

    @property
    def passed_on(self) -> Mapping[str, frozenset[str]]:
        """Service → the lemmas of the outputs of every other service of the catalogue."""
        if self._passed is None:
            every = [w.outputs for w in self.services.values()]
            self._passed = {
                name: frozenset().union(*(o for o in every if o is not w.outputs))
                for name, w in self.services.items()
            }
        return self._passed

    def rarity(self, word: Term) -> float:
        """How rare ``word`` is among the services: ``ln(1 + N / services having it)``."""
        try:
            return self._rarity[word]
        except KeyError:
            having = sum(1 for w in self.services.values() if w.strength(word) > 0.0)
            if len(self._rarity) >= _MEMO:
                self._rarity.clear()
            value = self._rarity[word] = math.log(1.0 + len(self.services) / max(having, 1))
            return value

    def knows(self, word: Term) -> bool:
        """Whether a service of the catalogue has ``word`` (its lemma or family)."""
        return (
            word.lemma in self._known
            or word.family in self._known
            or any(alt in self._known for alt in word.alts)
        )

    def corrected(self, word: Term) -> Term | None:
        """The catalogue word that ``word`` is a typo of, if exactly one is close enough.

        Only a word the lexicon does not know and the catalogue does not have is corrected;
        the allowed edits grow with its length (one up to 7 letters, two from 8).
        """
        if word.known or self.knows(word) or len(word.word) < _MIN_TYPO_LEN:
            return None
        if word.word in self._corrections:
            return self._corrections[word.word]
        limit = 1 if len(word.word) < _LONG_WORD else 2
        found = extract(word.word, self._words, scorer=OSA.distance, score_cutoff=limit, limit=5)
        best: Term | None = None
        if found:
            closest = min(score for _, score, _ in found)
            nearest = [choice for choice, score, _ in found if score == closest]
            if len(nearest) > 1:
                # a letter left out or typed twice is likelier than a wrong letter:
                # "ofboard" is "offboard", not "onboard"
                indel = {choice: Indel.distance(word.word, choice) for choice in nearest}
                fewest = min(indel.values())
                nearest = [choice for choice in nearest if indel[choice] == fewest]
            if len(nearest) == 1:
                best = term(nearest[0])
        if len(self._corrections) >= _MEMO:
            self._corrections.clear()
        self._corrections[word.word] = best
        return best


def vocabulary(catalog: ServiceCatalog) -> Vocabulary:
    """The catalogue's :class:`Vocabulary`, built once per catalogue."""
    return catalog.derived("matching.vocabulary", Vocabulary)


@dataclass(frozen=True)
class PartMatch:
    """The services that can serve one part, best first.

    Attributes:
        part: The part.
        ranked: ``(service, score)`` of every service that matches the part's head,
            best first (ties by name).
        serving: The services within :data:`BAND` of the best: those that serve it.
        corrections: ``(typo, word)`` pairs of typos corrected in the part.
        vague: The services within the band when they are more than half of a catalogue
            of three or more: the part says too little to choose, and nothing serves it.
    """

    part: Part
    ranked: tuple[tuple[str, float], ...]
    serving: tuple[str, ...]
    corrections: tuple[tuple[str, str], ...] = ()
    vague: tuple[str, ...] = ()

    @property
    def covered(self) -> bool:
        """Whether some service serves the part."""
        return bool(self.serving)


def _resolve(
    words: Sequence[Term], vocab: Vocabulary
) -> tuple[list[tuple[Term, float]], list[tuple[str, str]]]:
    out: list[tuple[Term, float]] = []
    fixed: list[tuple[str, str]] = []
    for word in words:
        corrected = vocab.corrected(word)
        if corrected is not None:
            out.append((corrected, TYPO))
            fixed.append((word.word, corrected.word))
        else:
            out.append((word, 1.0))
    return out, fixed


def _strength(service: ServiceWords, word: Term, *, answers: bool) -> float:
    found = service.strength(word)
    return max(found, service.answer(word)) if answers else found


def match_part(
    part: Part, catalog: ServiceCatalog, data_keys: frozenset[str] = frozenset()
) -> PartMatch:
    """Score the catalogue's services for ``part`` (see the module docstring).

    Args:
        part: A request part (its ``head`` is set).
        catalog: The services that may serve it.
        data_keys: The action's data field names, as :func:`field_key` compares them.
    """
    vocab = vocabulary(catalog)
    words, fixed = _resolve(part.terms, vocab)
    borrowed, fixed_borrowed = _resolve(part.context, vocab)
    fixed.extend(fixed_borrowed)
    if part.head is None:
        return PartMatch(part, (), (), tuple(fixed))
    head, head_factor = words[part.head]
    services = vocab.services
    total = len(services)
    rare = vocab.rarity

    roles = [
        _ROLE_HEAD if i == part.head else _ROLE_MODIFIER if w.modifier else _ROLE_OTHER
        for i, (w, _) in enumerate(words)
    ]
    objects = [words[i][0] for i in part.objects]
    asked = {head.lemma, head.family, *head.alts}
    head_is_verb = part.head == 0 and head.verb
    passed = vocab.passed_on
    ranked: list[tuple[str, float]] = []
    for name, service in services.items():
        if part.question and service.does in asked:
            continue  # "has it been paid?" asks whether, not to pay
        claimed = service.acting(head) if head_is_verb else service.strength(head, claims_only=True)
        if part.question:  # a question is answered by what a service returns, too
            claimed = max(claimed, service.answer(head))
        if claimed * head_factor <= 0.0 or not service.may_do(head, verb=head_is_verb):
            continue
        if head_is_verb and claimed < _VERB_EVIDENCE:
            continue  # "ship" is not what FraudCheck does for its "shipping address"
        if any(service.strength(o) <= 0.0 and o.lemma not in passed[name] for o in objects):
            # "post an update": a service that knows no update does not serve it; "text
            # the customer the tracking number" passes on what another service returns
            continue
        score = sum(
            role * factor * _strength(service, w, answers=part.question) * rare(w)
            for role, (w, factor) in zip(roles, words, strict=True)
        )
        score += sum(
            _ROLE_BORROWED * factor * service.strength(w) * rare(w) for w, factor in borrowed
        )
        score += _DATA_BONUS * len(service.inputs & data_keys)
        ranked.append((name, score))
    if not (part.head == 0 and head.verb):
        # A request that names no action ("everything under booking BK-1") is not served
        # by a service whose name and description say it does one (CancelBooking).
        said = {w.lemma for w, _ in (*words, *borrowed)} | {w.family for w, _ in words}
        said |= {alt for w, _ in words for alt in w.alts}
        ranked = [
            (name, score)
            for name, score in ranked
            if services[name].action is None or services[name].action in said
        ]
    ranked.sort(key=lambda item: (-item[1], item[0]))
    serving: tuple[str, ...] = ()
    vague: tuple[str, ...] = ()
    if ranked:
        best = ranked[0][1]
        serving = tuple(name for name, score in ranked if score >= BAND * best)
        if len(serving) > 1 and total >= _VAGUE_FROM and 2 * len(serving) > total:
            serving, vague = (), serving
    return PartMatch(part, tuple(ranked), serving, tuple(fixed), vague)


PLAIN: Final = 0.6
"""Head strength from which a service *plainly* serves a part: the head word itself is in
its name, examples or description, or its name has the word's family."""


def plain_servers(text: str, catalog: ServiceCatalog, data: Sequence[DataField] = ()) -> list[str]:
    """The services that plainly serve the request in ``text`` (empty: none does).

    The check of a part another planner (a language model) left uncovered: a service
    whose own words have the part's head word serves it plainly.
    """
    keys = frozenset(field_key(d.field) for d in data)
    vocab = vocabulary(catalog)
    found: list[str] = []
    for part in request_parts(text, data_values(data), data_fields(data)):
        match = match_part(part, catalog, keys)
        head = part.head_term
        if head is None or match.corrections:
            continue
        found.extend(
            name
            for name in match.serving
            if vocab.services[name].strength(head, claims_only=True) >= PLAIN and name not in found
        )
    return found
