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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from rapidfuzz.distance import OSA, Indel
from rapidfuzz.process import extract

from orra_planner.lexicon import READING_VERBS, WH_ASKS, Term, term
from orra_planner.parts import Part, data_fields, data_values, mentioned_values, request_parts
from orra_planner.service_words import (
    SYNONYM,
    TAUGHT,
    VERB_EVIDENCE,
    WEAK,
    ServiceWords,
    field_key,
    with_taught,
    words_of,
)
from orra_planner.text import split_words

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from orra_events import DataField
    from orra_planner.registry import ServiceCatalog

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
    "match_action",
    "match_part",
    "plain_servers",
    "uncovered_reason",
    "vocabulary",
]

TYPO: Final = 0.9
"""Factor on the strength of a match of a corrected typo."""
BAND: Final = 0.8
"""Services scoring at least this fraction of the best serve the part with it."""
_ROLE_HEAD: Final = 2.0
_ROLE_MODIFIER: Final = 0.5
_ROLE_OTHER: Final = 1.0
_ROLE_BORROWED: Final = 0.5
_DATA_BONUS: Final = 0.1
_MIN_TYPO_LEN: Final = 4
_LONG_WORD: Final = 8
_VAGUE_FROM: Final = 3
_MEMO: Final = 16_384


class Vocabulary:
    """Every service's words, and the catalogue's words for typo correction.

    Built once per catalogue (:func:`vocabulary`); what it learns about a word (its
    correction) is remembered for the catalogue's lifetime.
    """

    def __init__(self, catalog: ServiceCatalog) -> None:
        self.services: dict[str, ServiceWords] = with_taught(
            {name: words_of(spec) for name, spec in catalog.items()}, catalog
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
    rare = vocab.rarity

    roles = [
        _ROLE_HEAD if i == part.head else _ROLE_MODIFIER if w.modifier else _ROLE_OTHER
        for i, (w, _) in enumerate(words)
    ]
    objects = [words[i][0] for i in part.objects]
    asked = {head.lemma, head.family, *head.alts}
    head_is_verb = part.head == 0 and head.verb
    reading = head_is_verb and head.lemma in READING_VERBS
    passed = vocab.passed_on
    ranked: list[tuple[str, float]] = []
    by_synonym: set[str] = set()  # services that have the head only through a synonym
    for name, service in services.items():
        if part.question and not service.answers_question(asked, [w for w, _ in words]):
            continue
        own = service.own_act(head) if head_is_verb else service.own(head, claims_only=True)
        if part.question:  # a question is answered by what a service returns, too
            own = max(own, service.answer(head))
        claimed = max(own, service.kin.get(head.lemma, 0.0))
        if claimed * head_factor <= 0.0 or not service.may_do(head, verb=head_is_verb):
            continue
        if head_is_verb and claimed < VERB_EVIDENCE:
            continue  # "ship" is not what FraudCheck does for its "shipping address"
        if own <= 0.0:
            by_synonym.add(name)
        if any(
            service.strength(o) <= 0.0 and (reading or o.lemma not in passed[name]) for o in objects
        ):
            # "post an update": a service that knows no update does not serve it; "text
            # the customer the tracking number" passes on what another service returns,
            # "check the arrears" only reads them (a question for the service that has them)
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
    serving, vague = _serving(ranked, services, by_synonym, question=part.question)
    if vague and part.question:
        serving, vague = _by_kind(part, vague, services)
    return PartMatch(part, tuple(ranked), serving, tuple(fixed), vague)


def _by_kind(
    part: Part, vague: tuple[str, ...], services: Mapping[str, ServiceWords]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Of the services a question is too vague for, the one that tells what it asks.

    "Where's consignment TRK-1?" asks a place (:data:`~orra_planner.lexicon.WH_ASKS`): of
    every service that knows shipments, the one whose output has a location answers it.
    """
    opening = part.text.split(maxsplit=1)[0].lower().replace("\u2019", "'").split("'")[0]
    kinds = [found for k in WH_ASKS.get(opening, ()) if (found := term(k)) is not None]
    telling = [n for n in vague if any(services[n].answer(k) > 0.0 for k in kinds)]
    return ((telling[0],), ()) if len(telling) == 1 else ((), vague)


def _serving(
    ranked: Sequence[tuple[str, float]],
    services: Mapping[str, ServiceWords],
    by_synonym: set[str],
    *,
    question: bool,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The services that serve a part (within :data:`BAND`), and those it is too vague for."""
    if not ranked:
        return (), ()
    best = ranked[0][1]
    serving = tuple(name for name, score in ranked if score >= BAND * best)
    vague: tuple[str, ...] = ()
    total = len(services)
    if len(serving) > 1 and total >= _VAGUE_FROM and 2 * len(serving) > total:
        serving, vague = (), serving
    elif len(serving) > 1 and by_synonym.issuperset(serving):
        # "exit EMP-1": a synonym of words of several services ("leave") proposes each of
        # them; none of them has the word itself, so the part does not say which
        serving, vague = (), serving
    readers = [name for name in vague if services[name].reads]
    if question and len(readers) == 1:
        # "Where does order ORD-1 stand?": of every service that knows orders, a
        # question is for the one that only reads (OrderLookup)
        serving, vague = (readers[0],), ()
    return serving, vague


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


def match_action(
    action: str, catalog: ServiceCatalog, data: Sequence[DataField] = ()
) -> list[PartMatch]:
    """The request parts of ``action`` and the services that serve each.

    Remembered per catalogue (a bounded memo dropped with the catalogue): an action planned
    again with the same catalogue, data field names and mentioned data values (those that
    can change how it reads, :func:`~orra_planner.parts.mentioned_values`) is not matched
    again. The result depends on nothing else (the vocabulary's own memos are pure).
    """
    keys = frozenset(field_key(d.field) for d in data)
    values = mentioned_values(action, data)
    fields = data_fields(data)
    memo = catalog.derived("matching.actions", _new_memo)
    key = (action, keys, values, fields)
    found = memo.get(key)
    if found is None:
        found = tuple(
            _match_or_idiom(p, catalog, keys) for p in request_parts(action, values, fields)
        )
        if len(memo) >= _ACTIONS_MEMO:
            memo.clear()
        memo[key] = found
    return list(found)


def _match_or_idiom(part: Part, catalog: ServiceCatalog, keys: frozenset[str]) -> PartMatch:
    """:func:`match_part`; a phrasal verb no service has is an idiom of request.

    "Sort out PTO for EMP-1": when no service matches the phrasal verb at the head, the
    part asks for what follows it (:attr:`~orra_planner.parts.Part.idiom`); so does a
    light verb no service has ("log a cancellation", "read the latest message").
    """
    found = match_part(part, catalog, keys)
    if found.ranked or part.idiom is None:
        return found
    question = part.question or part.idiom_asks
    idiom = dataclasses.replace(part, head=part.idiom, objects=(), question=question)
    read = match_part(idiom, catalog, keys)
    verb = part.head_term
    if not read.ranked and verb is not None and " " not in verb.word:
        return found  # "log a translation": the refusal names the verb the user wrote
    return read


_ACTIONS_MEMO: Final = 1024
"""Actions remembered per catalogue by :func:`match_action`."""


def _new_memo(_: ServiceCatalog) -> dict[Any, tuple[PartMatch, ...]]:
    return {}


def uncovered_reason(match: PartMatch, project: str) -> str:
    """Why nothing serves the part of ``match``, quoting it."""
    part = match.part
    if match.vague:
        names = ", ".join(match.vague)
        return f"{part.text!r} is too vague to choose among {names}: say which step you mean"
    head = part.head_term
    where = f"in project {project!r} "
    if head is None:
        return f"nothing registered {where}is asked for by {part.text!r}"
    if head.verb or not head.known:
        return f"nothing registered {where}can {head.word}: {part.text!r}"
    return f"nothing registered {where}handles {head.word!r}: {part.text!r}"
