"""Brands as OpenStreetMap means them.

OSM ties a brand's branches together with ``brand:wikidata``, the convention
of the name-suggestion index (https://nsi.guide). Where the study gives the
brand's Wikidata id, a bank that carries a ``brand:wikidata`` (or
``operator:wikidata``) is the brand's exactly when the id matches. Banks with
no Wikidata tag, and every bank when the study gives no id, are matched by
their brand, operator or name, normalised (case, accents, punctuation and
spacing ignored: "BNP-Paribas" is "BNP Paribas") and compared whole, never as
a substring, with the study's aliases added. Misspellings ("BNP Parisbas")
are not matched; they are grouped with the brand in the "brands found" list
and reported in a warning, so the planner can add them to the aliases.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from siteplanner._errors import InputError

__all__ = ["brand_groups", "group_listing", "match_brand", "normalise"]

#: Two spellings whose normalised, space-free forms have a difflib similarity
#: ratio of at least this are the same brand for the "brands found" list.
#: The ratio is 2·M/T (M matching letters, T letters in both); 0.85 lets one
#: wrong letter through in a name of seven or more letters (2·6/14 = 0.857)
#: but not in six (2·5/12 = 0.83), and one missing letter from six up (2·5/11 = 0.91).
SIMILARITY = 0.85
#: Spellings shorter than this (space-free) are grouped only when equal ("OP", "POP").
MIN_FUZZY_LENGTH = 5

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Casefold, drop accents, turn punctuation into spaces and collapse spacing."""
    decomposed = unicodedata.normalize("NFKD", str(text).casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_NON_WORD.sub(" ", plain).split())


def _near(a: str, b: str) -> bool:
    if a == b:
        return True
    ka, kb = a.replace(" ", ""), b.replace(" ", "")
    if ka == kb:
        return True
    if min(len(ka), len(kb)) < MIN_FUZZY_LENGTH:
        return False
    wa, wb = a.split(), b.split()
    short, long_ = (wa, wb) if len(wa) <= len(wb) else (wb, wa)
    if long_[:len(short)] == short:  # "Banc Sabadell" and "Banc Sabadell d'Andorra"
        return True
    return difflib.SequenceMatcher(None, ka, kb).ratio() >= SIMILARITY


def brand_groups(labels: Iterable[str]) -> list[list[str]]:
    """Group near-duplicate spellings; each group sorted, groups by their first member.

    Runs over the distinct spellings (tens to hundreds in a country), not over banks.
    """
    names = sorted(set(labels), key=lambda s: (normalise(s), s))
    keys = [normalise(n) for n in names]
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            if _near(keys[i], keys[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[str]] = {}
    for i, n in enumerate(names):
        groups.setdefault(root(i), []).append(n)
    return sorted(groups.values(), key=lambda g: normalise(g[0]))


def group_listing(labels: pd.Series) -> str:
    """``"Andbank / AndBanc (2), MoraBanc / Morabank (3)"``: groups with their bank counts."""
    counts = labels.value_counts()
    parts = [f"{' / '.join(g)} ({int(counts[g].sum())})" for g in brand_groups(labels)]
    return ", ".join(parts) if parts else "none"


def match_brand(banks: pd.DataFrame, *, brand: tuple[str, ...], wikidata: tuple[str, ...] = (),
                aliases: tuple[str, ...] = (), labels: pd.Series | None = None) -> np.ndarray:
    """Which banks are the planner's own brand (a boolean array on ``banks``' rows).

    Parameters
    ----------
    banks
        Banks with ``brand``, ``operator``, ``name`` and, where read,
        ``brand:wikidata`` / ``operator:wikidata`` columns.
    brand, aliases
        The brand's names; compared whole after :func:`normalise`.
    wikidata
        The brand's Wikidata ids (``Q...``); decisive for banks that carry one.
    labels
        The name each bank is known by, for the warning about near-duplicates.

    Raises
    ------
    InputError
        If a brand name is empty after normalising (``--brand " "``).
    """
    wanted = {normalise(b) for b in (*brand, *aliases)}
    if "" in wanted or not brand:
        msg = "study.brand is empty after removing spaces and punctuation; give the brand's name"
        raise InputError(msg)
    own = np.zeros(len(banks), dtype=bool)
    for col in ("brand", "operator", "name"):
        if col in banks:
            own |= banks[col].fillna("").astype(str).map(normalise).isin(wanted).to_numpy()
    if wikidata:
        ids = {w.strip().upper() for w in wikidata}
        tagged = np.zeros(len(banks), dtype=bool)
        by_id = np.zeros(len(banks), dtype=bool)
        for col in ("brand:wikidata", "operator:wikidata"):
            if col in banks:
                v = banks[col].fillna("").astype(str).str.strip().str.upper()
                tagged |= (v != "").to_numpy()
                by_id |= v.isin(ids).to_numpy()
        own = np.where(tagged, by_id, own)
    if labels is not None and own.any():
        _warn_near_duplicates(labels, own, wanted)
    return own


def _warn_near_duplicates(labels: pd.Series, own: np.ndarray, wanted: set[str]) -> None:
    own_keys = wanted | set(labels[own].map(normalise))
    rivals = labels[~own]
    near = sorted({r for r in rivals.unique() if any(_near(normalise(r), k) for k in own_keys)})
    if near:
        counts = rivals.value_counts()
        listed = ", ".join(f"{n!r} ({int(counts[n])})" for n in near)
        warnings.warn(f"banks spelled like the brand are counted as competitors: {listed}; "
                      "if they are the brand's, add them to study.aliases (or set "
                      "study.brand_wikidata)", UserWarning, stacklevel=3)
