"""Dense linear algebra: the LAPACK flop counts (leading terms, Golub & Van Loan, "Matrix
Computations", and LAPACK Working Note 41), per matrix × the batch.

XLA lowers these to LAPACK / cuSOLVER custom calls its cost analysis cannot see (it reports
−1 or only the helper ops around the call), so ``flops_xla`` carries the same count as the
textbook; every analysis that meets one says so in its warnings.
"""

from __future__ import annotations

import math

from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import in_elems, out_elems

NOTE = "priced by its LAPACK flop count (Golub & Van Loan); XLA's cost analysis cannot see the custom call"


def _matrix(v) -> tuple[int, int, int]:
    """(batch, rows, cols) of a stack of matrices."""
    *b, m, n = v.aval.shape
    return math.prod(b), m, n


def _geqrf(m: int, n: int) -> float:
    """Householder QR of m×n: 2mn² − 2n³/3 (m ≥ n), by symmetry for m < n."""
    return 2 * m * n * n - 2 * n ** 3 / 3 if m >= n else 2 * n * m * m - 2 * m ** 3 / 3


def _orgqr(m: int, n: int, k: int) -> float:
    """Forming the m×n Q from k reflectors: 4mnk − 2(m + n)k² + 4k³/3."""
    return 4 * m * n * k - 2 * (m + n) * k * k + 4 * k ** 3 / 3


def _cost(eqn, batch: int, flops: float) -> TheoryCost:
    f = round(batch * flops)
    io = in_elems(eqn) + out_elems(eqn)
    return TheoryCost(flops_textbook=f, flops_xla=f, accesses_naive=io, accesses_ideal=io)


@register("cholesky", note=NOTE)
def cholesky(eqn) -> TheoryCost:
    b, n, _ = _matrix(eqn.invars[0])
    return _cost(eqn, b, n ** 3 / 3)


@register("lu", note=NOTE)
def lu(eqn) -> TheoryCost:
    b, m, n = _matrix(eqn.invars[0])
    lo, hi = min(m, n), max(m, n)
    return _cost(eqn, b, hi * lo * lo - lo ** 3 / 3)


@register("geqrf", "geqp3", note=NOTE)
def geqrf(eqn) -> TheoryCost:
    b, m, n = _matrix(eqn.invars[0])
    return _cost(eqn, b, _geqrf(m, n))


@register("qr", note=NOTE)
def qr(eqn) -> TheoryCost:
    """geqrf, then orgqr for Q (m×min(m,n) reduced, m×m full)."""
    b, m, n = _matrix(eqn.invars[0])
    k = min(m, n)
    q_cols = m if eqn.params.get("full_matrices") else k
    return _cost(eqn, b, _geqrf(m, n) + _orgqr(m, q_cols, k))


@register("householder_product", note=NOTE)
def householder_product(eqn) -> TheoryCost:
    b, m, n = _matrix(eqn.invars[0])
    k = eqn.invars[1].aval.shape[-1]
    return _cost(eqn, b, _orgqr(m, n, k))


@register("ormqr", note=NOTE)
def ormqr(eqn) -> TheoryCost:
    """Apply the Q of k reflectors to an m×n C from the left: 4mnk − 2nk²."""
    k = eqn.invars[1].aval.shape[-1]
    b, m, n = _matrix(eqn.invars[2])
    if not eqn.params.get("left", True):
        m, n = n, m
    return _cost(eqn, b, 4 * m * n * k - 2 * n * k * k)


@register("cholesky_update", note="priced as 4n² flops (n Givens rotations over a row and the update vector)")
def cholesky_update(eqn) -> TheoryCost:
    b, n, _ = _matrix(eqn.invars[0])
    return _cost(eqn, b, 4 * n * n)


@register("triangular_solve", note=NOTE)
def triangular_solve(eqn) -> TheoryCost:
    """n×n triangular A against k right-hand sides: n² flops per right-hand side."""
    b, n, _ = _matrix(eqn.invars[0])
    _, rows, cols = _matrix(eqn.invars[1])
    rhs = cols if eqn.params.get("left_side") else rows
    return _cost(eqn, b, n * n * rhs)


@register("eigh", note=NOTE)
def eigh(eqn) -> TheoryCost:
    """Symmetric eigensolver with eigenvectors: 9n³."""
    b, n, _ = _matrix(eqn.invars[0])
    return _cost(eqn, b, 9 * n ** 3)


@register("svd", note=NOTE)
def svd(eqn) -> TheoryCost:
    """Golub–Reinsch SVD of m×n (m ≥ n): 4m²n + 8mn² + 9n³ with U and V, 4mn² − 4n³/3 values only."""
    b, m, n = _matrix(eqn.invars[0])
    m, n = max(m, n), min(m, n)
    uv = eqn.params.get("compute_uv", True)
    return _cost(eqn, b, 4 * m * m * n + 8 * m * n * n + 9 * n ** 3 if uv else 4 * m * n * n - 4 * n ** 3 / 3)


@register("eig", "schur", note=NOTE)
def eig(eqn) -> TheoryCost:
    """Unsymmetric QR algorithm: 10n³ eigenvalues only, 25n³ with (Schur) vectors."""
    b, n, _ = _matrix(eqn.invars[0])
    p = eqn.params
    vectors = p.get("compute_right_eigenvectors") or p.get("compute_left_eigenvectors") or p.get("compute_schur_vectors")
    return _cost(eqn, b, (25 if vectors else 10) * n ** 3)


@register("hessenberg", note=NOTE)
def hessenberg(eqn) -> TheoryCost:
    b, n, _ = _matrix(eqn.invars[0])
    return _cost(eqn, b, 10 * n ** 3 / 3)


@register("tridiagonal", note=NOTE)
def tridiagonal(eqn) -> TheoryCost:
    b, n, _ = _matrix(eqn.invars[0])
    return _cost(eqn, b, 4 * n ** 3 / 3)


@register("tridiagonal_solve", note=NOTE)
def tridiagonal_solve(eqn) -> TheoryCost:
    """Thomas algorithm: 8n flops per right-hand side."""
    b, n, k = _matrix(eqn.invars[3])
    return _cost(eqn, b, 8 * n * k)


@register("symmetric_product", note=NOTE)
def symmetric_product(eqn) -> TheoryCost:
    """C = αAAᵀ + βC, A n×k (syrk): k·n·(n + 1)."""
    b, n, k = _matrix(eqn.invars[0])
    return _cost(eqn, b, k * n * (n + 1))
