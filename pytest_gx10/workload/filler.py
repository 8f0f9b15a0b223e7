"""Varied English filler text, reproducible from a seed.

The reference benchmark built its prompts from "varied English filler": sentences about a cast of
characters doing things with objects in places. Varied matters: a repeated sentence would let
prefix caching or n-gram speculation turn a throughput test into a cache test.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

__all__ = ["CONTINUE_INSTRUCTION", "filler_sentences"]

CONTINUE_INSTRUCTION = "Continue the narrative above in the same style, adding new events."

_SUBJECTS = (
    "The cat",
    "The team",
    "The librarian",
    "John",
    "The chef",
    "The engineer",
    "A child",
    "Mary",
    "The researcher",
    "A fox",
    "The gardener",
    "Dr. Reed",
    "The pilot",
    "Captain Ortiz",
    "The detective",
    "The astronaut",
    "An old sailor",
    "The baker",
    "Professor Lin",
    "The night guard",
    "A young painter",
    "The mayor",
    "Two students",
    "The carpenter",
    "A quiet neighbour",
    "The violinist",
)
_VERBS = (
    "walked past",
    "discovered",
    "spoke about",
    "decided to repair",
    "carefully examined",
    "forgot",
    "painted",
    "argued over",
    "quietly carried",
    "photographed",
    "returned",
    "wrote a letter about",
    "searched for",
    "laughed at",
    "measured",
    "hid",
    "sold",
    "borrowed",
    "cleaned",
    "described",
)
_OBJECTS = (
    "a printing mistake",
    "an old photograph",
    "the red door",
    "a leather notebook",
    "the broken clock",
    "a map of the harbour",
    "a basket of apples",
    "the silver key",
    "a forgotten umbrella",
    "the long report",
    "a wooden bridge",
    "the tall lighthouse",
    "a box of letters",
    "the green bicycle",
    "a strange recipe",
    "the museum ticket",
    "a pair of boots",
    "the village bell",
    "a jar of honey",
    "the winter coat",
)
_PLACES = (
    "near the station",
    "in the library",
    "before sunrise",
    "after the storm",
    "at the market",
    "behind the school",
    "on the hill",
    "during the festival",
    "in the quiet garden",
    "by the river",
    "at the edge of town",
    "under the old bridge",
    "in the crowded cafe",
    "on the last train",
    "inside the workshop",
    "beside the fountain",
    "in the morning fog",
    "at the harbour",
)
_CODAS = (
    "",
    "",
    "",
    " because nobody else would",
    " while the rain kept falling",
    " and then went home",
    " for the second time that week",
    " without telling anyone",
    " as the bells rang",
    " although it was already late",
)


def filler_sentences(seed: int | str) -> Iterator[str]:
    """An endless, reproducible stream of varied sentences."""
    rng = random.Random(seed)
    while True:
        yield (
            f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
            f"{rng.choice(_PLACES)}{rng.choice(_CODAS)}."
        )
