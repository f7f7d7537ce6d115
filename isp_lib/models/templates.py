"""Prompt templates for CLIP's zero-shot classification head.

CLIP (Radford et al., 2021) classifies an image by comparing its embedding with the text
embeddings of prompts such as "a photo of a dog."; averaging over several phrasings of the
same prompt gives a steadier head. The set below is the kit's own short, generic one; a data
set may override it with phrasings that suit its classes.
"""

from __future__ import annotations

import re

GENERIC: tuple[str, ...] = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image showing a {}.",
    "a close-up photo of the {}.",
    "a blurry photo of a {}.",
    "a low-resolution photo of a {}.",
    "a cropped photo of the {}.",
    "a photo of one {}.",
)

# Keyed by the data set name with everything but letters and digits removed, lower case.
_OVERRIDES: dict[str, tuple[str, ...]] = {
    "fashionmnist": (
        "a photo of a {}, an item of clothing.",
        "a product photo of a {}.",
        "a black and white photo of a {}.",
        "a low-resolution photo of a {}.",
        "a small grey picture of a {}.",
    ),
    "mnist": (
        'a photo of the number: "{}".',
        "a handwritten digit {}.",
        "a black and white picture of the number {}.",
    ),
    "svhn": (
        'a photo of the number: "{}".',
        "a street sign showing the number {}.",
        "a house number with the digit {}.",
    ),
}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def templates_for(dataset: str) -> tuple[str, ...]:
    """Prompt templates for a data set, each with one ``{}`` for the class name.

    Args:
        dataset: data set name (``RawData.name``); matched ignoring case and punctuation,
            so ``"fashion-mnist"`` and ``"FashionMNIST"`` pick the same override.

    Returns:
        The data set's own templates if it has an override, else :data:`GENERIC`.
    """
    return _OVERRIDES.get(_key(dataset), GENERIC)
