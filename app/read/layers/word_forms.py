"""A typed word's forms, so that "dog" finds "dogs", "stripes" finds "striped" and "geese" finds "goose".

A word's forms are its base forms (lemmas) under every reading the English dictionary of lemminflect knows, and
each base form's inflections. A past participle read as an adjective ("striped") also counts its verb's base form
("stripe") when the dictionary knows that base form; a noun with no verb reading ("stripe") also counts its regular
past participle ("striped"), as labels make adjectives of nouns that way.
"""

from __future__ import annotations

import re

from lemminflect import getAllInflections, getAllInflectionsOOV, getAllLemmas, getAllLemmasOOV

#: What a label is split into words on: anything but letters, digits and apostrophes.
_WORD_SPLIT = re.compile(r"[^\w']+|_")


def label_words(text: str) -> list[str]:
    """Return the case-folded words of a label or query (`Tabby_cat, striped` -> [tabby, cat, striped])."""
    return [word for word in _WORD_SPLIT.split(text.casefold()) if word]


def _base_forms(word: str) -> set[str]:
    """Return the word's base forms: its lemmas under every reading, plus a known verb's for an -ed/-ing form."""
    bases = {lemma for lemmas in getAllLemmas(word).values() for lemma in lemmas}
    if word.endswith(("ed", "ing")):
        bases |= {verb for verb in getAllLemmasOOV(word, "VERB").get("VERB", ()) if getAllLemmas(verb)}
    return bases


def word_forms(word: str) -> frozenset[str]:
    """Return the case-folded forms of one word: itself, its base forms and their inflections."""
    word = word.casefold()
    forms = {word}
    if not word.isalpha():  # numbers and codes have no forms
        return frozenset(forms)
    for base in _base_forms(word):
        forms.add(base)
        inflections = getAllInflections(base)
        forms |= {form for group in inflections.values() for form in group}
        if "NN" in inflections and not any(tag.startswith("VB") for tag in inflections):
            forms |= set(getAllInflectionsOOV(base, "VERB").get("VBN", ()))
    return frozenset(forms)
