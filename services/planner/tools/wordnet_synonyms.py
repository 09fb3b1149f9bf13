"""Build ``orra_planner/data/synonyms.txt.gz``, the planner's synonyms, from WordNet 3.0.

Usage::

    python services/planner/tools/wordnet_synonyms.py WORDNET_DICT_DIR

``WORDNET_DICT_DIR`` holds Princeton WordNet 3.0 in its database files (``index.noun``,
``data.noun``, ... as the WordNet release's ``dict/`` directory has them). The output has
one line per word: the word, then the other words of its most frequent sense as a noun, a
verb and an adjective (``refund return repay payback``). Only lower-case single words are
kept, and phrasal verbs with the particles the planner reads as one verb (``pay_back`` →
``payback``, see ``orra_planner.parts``). First senses only: a word's rarer senses ("charge"
as accusing) would let a service serve requests it has nothing to do with.

WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved. Used under the
WordNet licence, which the output's first lines repeat.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

__all__ = ["build", "main"]

_PARTICLES = ("up", "off", "back", "out", "down", "away", "over")
_POS = ("noun", "verb", "adj")
_OUT = Path(__file__).resolve().parents[1] / "src/orra_planner/data/synonyms.txt.gz"
_NOTICE = (
    "# Synonyms from WordNet 3.0 (first senses), built by",
    "# services/planner/tools/wordnet_synonyms.py.",
    "# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.",
    "# THIS SOFTWARE AND DATABASE IS PROVIDED 'AS IS' AND PRINCETON UNIVERSITY MAKES NO",
    "# REPRESENTATIONS OR WARRANTIES, EXPRESS OR IMPLIED. The WordNet licence:",
    "# https://wordnet.princeton.edu/license-and-commercial-use",
)


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


def _synsets(directory: Path, pos: str) -> dict[str, list[str]]:
    """Offset → lemmas of every synset of ``data.<pos>``."""
    found: dict[str, list[str]] = {}
    with (directory / f"data.{pos}").open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            count = int(fields[3], 16)
            found[fields[0]] = [fields[4 + 2 * i].split("(")[0] for i in range(count)]
    return found


def build(directory: Path) -> dict[str, set[str]]:
    """Every word → the other words of its first sense in each part of speech."""
    synonyms: dict[str, set[str]] = {}
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
                others = {_word(lemma) for lemma in synsets.get(first, ())} - {None, word}
                if others:
                    synonyms.setdefault(word, set()).update(o for o in others if o)
    return synonyms


def main(argv: list[str]) -> int:
    """Write the synonyms file from the WordNet directory named in ``argv``."""
    if len(argv) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    synonyms = build(Path(argv[0]))
    lines = [*_NOTICE, *(" ".join([w, *sorted(s)]) for w, s in sorted(synonyms.items()))]
    _OUT.parent.mkdir(parents=True, exist_ok=True)
    _OUT.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    sys.stdout.write(f"{len(synonyms)} words → {_OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
