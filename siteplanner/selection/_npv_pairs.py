"""The pairwise Huff cannibalisation between new sites, built sparse (``--select npv``).

Two new sites can only take customers from each other at demand points both
reach, so the interacting pairs are exactly the nonzero pattern of
``S Sᵀ`` for the candidate x demand reach matrix ``S``; any pair outside it
(further apart than twice the catchment) has no shared demand. The term is
accumulated like that product, demand point by demand point, but with the
Huff kernel instead of a plain product: at a demand point with own utility
``O``, rival utility ``R``, ``T = O + R`` and the brand share
``f(U) = (O + U) / (T + U)``, the pair (i, j) with utilities ``a``, ``b``
loses ``f(a) + f(b) - f(0) - f(a + b)`` of its demand, in closed form

    R / T * a b (2T + a + b) / ((T + a) (T + b) (T + a + b))      (T > 0)

(>= 0, no cancellation) and the whole point's demand when nothing exists
there yet (``T = 0``). Rows are processed in chunks of at most
``max_terms`` (pair, demand point) terms, so memory stays bounded whatever
the instance size.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp

__all__ = ["huff_market", "huff_pair_losses"]

log = logging.getLogger(__name__)


def huff_pair_losses(util: sp.sparray | sp.spmatrix, own: np.ndarray, rival: np.ndarray,
                     weights: np.ndarray, *, columns: np.ndarray | None = None,
                     max_terms: int = 4_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of candidates sharing demand, and the demand they lose together.

    Parameters
    ----------
    util
        (demand points x candidates) Huff utility of each new site, sparse
        (missing = out of reach).
    own, rival
        Per demand point, the summed utility of the brand's and the rivals'
        existing branches.
    weights
        Per demand point, its demand (visits per day).
    columns
        Candidate positions that may be chosen (default: all); pairs are
        formed among these only.
    max_terms
        Most (pair, demand point) terms held in memory at once.

    Returns
    -------
    pairs, loss
        (p, 2) candidate positions with ``i < j``, and the visits per day
        they lose by opening together rather than apart (> 0).
    """
    n = util.shape[1]
    cols = np.arange(n) if columns is None else np.asarray(columns, dtype=np.int64)
    u = sp.csr_array(sp.csc_array(util)[:, cols])
    u.eliminate_zeros()
    u.sort_indices()
    deg = np.diff(u.indptr)
    total = np.asarray(own, dtype=float) + np.asarray(rival, dtype=float)
    rival = np.asarray(rival, dtype=float)
    w = np.asarray(weights, dtype=float)
    terms = deg * (deg - 1) // 2
    rows = np.flatnonzero((terms > 0) & (w > 0))
    acc = sp.csr_array((len(cols), len(cols)))
    for chunk in _chunks(terms[rows], max_terms):
        r = rows[chunk]
        i, j, a, b, row = _row_pairs(u, r, deg[r])
        t, rv, wt = total[row], rival[row], w[row]
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(t > 0, rv / t * a * b * (2 * t + a + b)
                         / ((t + a) * (t + b) * (t + a + b)), 1.0)
        acc = acc + sp.csr_array(sp.coo_array((wt * g, (i, j)), shape=acc.shape))
    acc = sp.coo_array(acc)
    keep = acc.data > 0
    pairs = np.column_stack([cols[acc.row[keep]], cols[acc.col[keep]]]).astype(np.int64)
    swap = pairs[:, 0] > pairs[:, 1]
    pairs[swap] = pairs[swap][:, ::-1]
    log.debug("huff_pair_losses: %d pairs from %d terms", len(pairs), int(terms.sum()))
    return pairs, acc.data[keep]


def _chunks(sizes: np.ndarray, cap: int) -> list[slice]:
    """Consecutive slices of ``sizes`` each summing to at most ``cap`` (one item may exceed it)."""
    if len(sizes) == 0:
        return []
    ends = np.cumsum(sizes)
    out, start = [], 0
    while start < len(sizes):
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + cap, side="right")), start + 1)
        out.append(slice(start, stop))
        start = stop
    return out


def _row_pairs(u: sp.csr_array, rows: np.ndarray, deg: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All (i < j) column pairs within each of ``rows``: columns, utilities and the row."""
    starts = u.indptr[rows]
    # every nonzero of the rows, with its position within its row
    nnz_row = np.repeat(np.arange(len(rows)), deg)
    pos = np.arange(int(deg.sum())) - np.repeat(np.cumsum(deg) - deg, deg)
    first = starts[nnz_row] + pos
    after = deg[nnz_row] - 1 - pos  # partners later in the row
    e1 = np.repeat(first, after)
    offset = np.arange(int(after.sum())) - np.repeat(np.cumsum(after) - after, after) + 1
    e2 = e1 + offset
    row = rows[np.repeat(nnz_row, after)]
    return u.indices[e1], u.indices[e2], u.data[e1], u.data[e2], row


def huff_market(util: sp.sparray | sp.spmatrix, own: np.ndarray, rival: np.ndarray,
                weights: np.ndarray) -> tuple[sp.csr_array, np.ndarray]:
    """Each new site's gain in brand demand per demand point, and what any set can gain there.

    Returns ``gain`` (demand points x candidates, visits per day): ``w (f(u) -
    f(0))``, the brand demand site i adds at point p when opened alone, and
    ``cap`` (per demand point, visits per day): ``w (1 - f(0))``, the rivals'
    share, which no set of new sites can exceed. The column sums of ``gain``
    are the sites' standalone net new demand.
    """
    u = sp.csr_array(util, dtype=float, copy=True)
    u.eliminate_zeros()
    total = np.asarray(own, dtype=float) + np.asarray(rival, dtype=float)
    rv, w = np.asarray(rival, dtype=float), np.asarray(weights, dtype=float)
    rows = np.repeat(np.arange(u.shape[0]), np.diff(u.indptr))
    t = total[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(t > 0, rv[rows] * u.data / (t * (t + u.data)), 1.0)
    gain = sp.csr_array((w[rows] * h, u.indices, u.indptr), shape=u.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        cap = w * np.where(total > 0, rv / total, 1.0)
    return gain, cap
