"""Words for lexical matching: tokenising, stop words and a small suffix stemmer.

The stemmer is deliberately simple and predictable, not linguistic: it only has to map
the words an action and a service description share to one stem — "delivery" and
"deliver", "notify" and "notification", "payment" and "pay", "fraudulent" and "fraud",
"refunds" and "refund", "inventory" and "inventories".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

__all__ = ["GENERIC_NAME_WORDS", "STOP_WORDS", "split_words", "stem", "stems"]

_WORD: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

STOP_WORDS: Final = frozenset(
    [
        # generic verbs of actions: "process a refund request" is about the refund
        "process",
        "handle",
        "perform",
        "execute",
        "run",
        "request",
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "for",
        "to",
        "from",
        "with",
        "without",
        "in",
        "on",
        "at",
        "by",
        "into",
        "onto",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "there",
        "their",
        "them",
        "they",
        "we",
        "our",
        "us",
        "you",
        "your",
        "i",
        "me",
        "my",
        "he",
        "she",
        "his",
        "her",
        "not",
        "no",
        "nor",
        "so",
        "than",
        "then",
        "too",
        "very",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "do",
        "does",
        "did",
        "done",
        "please",
        "also",
        "just",
        "only",
        "all",
        "any",
        "each",
        "every",
        "some",
        "such",
        "more",
        "most",
        "other",
        "same",
        "own",
        "if",
        "when",
        "while",
        "after",
        "before",
        "about",
        "over",
        "under",
        "again",
        "via",
        "per",
        "ensuring",
        "ensure",
        "make",
        "sure",
        "using",
        "use",
        "get",
        "gets",
        "set",
        "run",
        "runs",
        "perform",
        "execute",
        "handle",
        "handles",
        "process",
        "processes",
        "processing",
        "processed",
        "request",
        "requests",
        "task",
        "tasks",
        "action",
        "actions",
        "service",
        "services",
        "given",
    ]
)
"""Words too common to say which service an action wants."""

GENERIC_NAME_WORDS: Final = frozenset(
    {
        "service",
        "svc",
        "agent",
        "api",
        "app",
        "handler",
        "manager",
        "worker",
        "system",
        "check",
        "checker",
        "server",
        "client",
        "tool",
    }
)
"""Parts of service names that describe the kind of component, not what it does."""

_IRREGULAR: Final = {"paid": "pay", "sent": "send", "shipped": "ship", "bought": "buy"}

_SUFFIXES: Final = (
    ("ications", ""),
    ("ication", ""),
    ("ulently", ""),
    ("ulent", ""),
    ("ments", ""),
    ("ment", ""),
    ("ations", "at"),
    ("ation", "at"),
    ("ying", ""),
    ("ies", ""),
    ("ied", ""),
    ("ing", ""),
    ("ed", ""),
    ("sses", "ss"),
    ("xes", "x"),
    ("ches", "ch"),
    ("shes", "sh"),
    ("s", ""),
    ("y", ""),
)

_MIN_STEM: Final = 3


def split_words(text: str) -> list[str]:
    """Lower-case words of ``text``, splitting camelCase (``DeliveryAgent`` → delivery, agent)."""
    return [word.lower() for word in _WORD.findall(text)]


@lru_cache(maxsize=16_384)
def stem(word: str) -> str:
    """The stem of one lower-case word (``notification`` → ``notif``); results are cached."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, replacement in _SUFFIXES:
        if not word.endswith(suffix):
            continue
        if suffix == "s" and word.endswith(("ss", "us", "is")):
            break
        candidate = word[: -len(suffix)] + replacement
        if len(candidate) < _MIN_STEM:
            continue
        doubled = len(candidate) > _MIN_STEM and candidate[-1] == candidate[-2]
        if suffix in {"ing", "ed"} and doubled and candidate[-1] not in "lsz":
            candidate = candidate[:-1]
        word = candidate
        break
    if word.endswith("e") and len(word) > _MIN_STEM + 1:
        word = word[:-1]
    return word


def stems(text: str, *, skip: frozenset[str] = STOP_WORDS) -> list[str]:
    """Stems of the words of ``text`` that are not in ``skip``, in order, with repeats."""
    return [stem(word) for word in split_words(text) if word not in skip and len(word) > 1]
