"""The one Unicode normalization of keywords, patterns and field names: NFC, case-folded, NFC."""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """NFC, case-folded, NFC again (case folding can decompose)."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
