"""What a concept word says about an image, and the cleaned vocabulary built from the 20k most common words.

Generic words describe a photograph as such (`photo`, `pic`, `image`) or carry no content at all (function
words such as `the`, `about`); they are 11–38% of the labels a raw 20k vocabulary gives on our demo. The
cleaned set drops them, tokens with letters lemminflect does not know (abbreviations, fragments such as
`mr`, `etc`, `ii`) and merges inflections into one form with lemminflect's part-of-speech lemmas (`dogs`
-> `dog`, `mice` -> `mouse`), keeping the first (most frequent) word's place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

#: Stop words this frequent count as function words even where lemminflect knows a noun reading (`it`, `this`).
MOST_FREQUENT_FUNCTION_RANK = 120

#: Words that describe a photograph as such rather than anything in it.
GENERIC_WORDS = frozenset(
    {
        "photo",
        "photos",
        "pic",
        "pics",
        "picture",
        "pictures",
        "image",
        "images",
        "photograph",
        "photographs",
        "photography",
        "img",
        "jpg",
        "jpeg",
        "png",
        "thumbnail",
        "stock",
        "closeup",
        "view",
        "shot",
        "snapshot",
        "selfie",
    }
)


@cache
def _stop_words() -> frozenset[str]:
    """Return the `stop-words` package's English list (it ships its data)."""
    from stop_words import get_stop_words

    return frozenset(get_stop_words("en"))


def _readings(word: str) -> dict[str, tuple[str, ...]]:
    """Return lemminflect's lemmas of `word` by part of speech ({} for a word its lexicon does not know)."""
    import lemminflect

    return dict(lemminflect.getAllLemmas(word))


@cache
def _most_frequent_words() -> frozenset[str]:
    """Return English's most frequent words (wordfreq's data), nearly all of them pronouns and particles."""
    import wordfreq

    return frozenset(wordfreq.top_n_list("en", MOST_FREQUENT_FUNCTION_RANK))


def is_function_word(word: str) -> bool:
    """Return whether `word` is a stop word carrying no content (`the`, `about`, `it`; not `computer`, `man`).

    The `stop-words` list is broad (it lists `computer`, `fire`, `man`), so a listed word counts only if
    lemminflect has no noun reading of it, or it is among the most frequent words of English, where the
    noun readings lemminflect gives (`it`, `you`, `this`) are not what the word means.
    """
    key = word.strip().casefold()
    if key not in _stop_words():
        return False
    return "NOUN" not in _readings(key) or key in _most_frequent_words()


def is_generic_concept(word: str) -> bool:
    """Return whether a concept is generic: about the picture itself (`photo`) or a function word (`the`)."""
    key = word.strip().casefold()
    return key in GENERIC_WORDS or is_function_word(key)


def lemma(word: str) -> str:
    """Return the word's base form, preferring its noun reading (`dogs` -> `dog`), then adjective, then verb.

    A word that is already a base form of some reading stays as it is (`glasses`, `news`).
    """
    readings = _readings(word)
    if any(word in lemmas for lemmas in readings.values()):
        return word
    for part_of_speech in ("NOUN", "PROPN", "ADJ", "VERB", "ADV"):
        if part_of_speech in readings:
            return readings[part_of_speech][0]
    return word


def clean_vocabulary(words: Iterable[str]) -> list[str]:
    """Return `words` without generic words, unknown or letterless tokens, inflections merged, order kept."""
    kept: list[str] = []
    seen: set[str] = set()
    for raw in words:
        word = raw.strip().casefold()
        if len(word) < 2 or not word.isalpha() or is_generic_concept(word) or not _readings(word):
            continue
        base = lemma(word)
        if base in seen or base in GENERIC_WORDS:
            continue
        seen.add(base)
        kept.append(base)
    return kept


def is_vocabulary_word(concept: str) -> bool:
    """Return whether a concept is made of English words: every run of 2+ letters in it known to lemminflect.

    The rule `20k-clean` keeps words by, applied to each run of letters (`fire truck`; `t-shirt` and
    `jack-o'-lantern` by their longer parts): fragments such as `cho` or `mr` and codes such as `n01440764` are
    not words.
    """
    words = [token for token in re.split(r"[^a-z]+", concept.casefold()) if len(token) >= 2]
    return bool(words) and all(_readings(word) for word in words)


def term_concepts(concepts: Iterable[str]) -> list[bool] | None:
    """Return which concepts may be explanation terms: the English words where most of the vocabulary is English
    words (`is_vocabulary_word`), else None: a vocabulary of another language or of codes rules none out."""
    words = [is_vocabulary_word(concept) for concept in concepts]
    return words if 2 * sum(words) >= len(words) else None
