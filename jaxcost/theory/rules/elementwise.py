"""Elementwise ops: 1 FLOP per output element (XLA and textbook); transcendentals apart.

Arithmetic, comparisons, selects, conversions, bit ops: 1 XLA flop per output element, as
XLA's HloCostAnalysis counts every elementwise HLO (complex ones included). Transcendentals
(exp, log, tanh, rsqrt, sqrt, pow, sin, ...) count 0 XLA flops and 1 transcendental per
element; textbook: one FLOP each. Lowerings that add arithmetic are counted as lowered:
``logistic`` = neg, exp, add, divide (3 flops + 1 transcendental; textbook 4, Hollemans §1.2);
``exp2`` = exp(x·ln 2) (1 flop + 1 transcendental). ``integer_pow`` x**y counts the multiplies
of square-and-multiply (a negative y adds one divide).

Folded ops cost nothing: identities (x + 0, x − 0, x·1, x | 0, x ^ 0, x & ~0 with a literal
operand, a conversion to the same dtype) and ops on literals only are removed or computed
at compile time when jax lowers the program (XLA counts 0 there).
``bitcast_convert_type`` reinterprets bits (textbook 0) but XLA counts it as one elementwise op.

Special functions (``lgamma``, ``erf_inv``, ``igamma``, Bessel, ``asin``, ``sinh``, ...) and
``nextafter`` are expanded by XLA's CHLO lowering into dtype-dependent polynomials or bit
tricks; the theory counts them as one transcendental (``nextafter``: one flop) per element and
says so in the warnings.
"""

from __future__ import annotations

import numpy as np
from jax.extend import core as jcore

from jaxcost.theory import formulas as F
from jaxcost.theory.registry import TheoryCost, register
from jaxcost.theory.rules._avals import in_elems, out_elems

ELEMENTWISE = (
    "add", "sub", "mul", "div", "rem", "max", "min", "neg", "abs", "sign", "floor", "ceil", "round",
    "select_n", "eq", "ne", "lt", "le", "gt", "ge", "eq_to", "lt_to", "le_to", "and", "or", "not", "xor",
    "convert_element_type", "clamp", "is_finite", "square", "add_any", "shift_left", "shift_right_logical",
    "shift_right_arithmetic", "population_count", "clz", "real", "imag", "conj", "complex", "copysign",
    "reduce_precision", "mulhi",
)
TRANSCENDENTAL = (
    "exp", "log", "tanh", "rsqrt", "sqrt", "pow", "sin", "cos", "tan", "erf", "expm1", "log1p",
    "atan2", "cbrt",
)
EXPANDED_SPECIAL = (
    "erfc", "erf_inv", "lgamma", "digamma", "igamma", "igammac", "igamma_grad_a", "random_gamma_grad",
    "polygamma", "zeta", "bessel_i0e", "bessel_i1e", "regularized_incomplete_beta",
    "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
)


def _cost(eqn, flops_textbook: int, flops_xla: int, transcendentals: int = 0) -> TheoryCost:
    io = in_elems(eqn) + out_elems(eqn)
    return TheoryCost(flops_textbook=flops_textbook, flops_xla=flops_xla, transcendentals=transcendentals,
                      accesses_naive=io, accesses_ideal=io)


def _all_ones(v) -> bool:
    dt = np.dtype(v.aval.dtype)
    return np.issubdtype(dt, np.integer) and bool(np.all(np.asarray(v.val).astype(dt) == np.array(-1).astype(dt)))


# name → (operand positions a literal may take, test that it leaves the other operand unchanged)
_IDENTITY = {"add": ((0, 1), lambda v: np.all(np.asarray(v.val) == 0)),
             "sub": ((1,), lambda v: np.all(np.asarray(v.val) == 0)),
             "or": ((0, 1), lambda v: np.all(np.asarray(v.val) == 0)),
             "xor": ((0, 1), lambda v: np.all(np.asarray(v.val) == 0)),
             "mul": ((0, 1), lambda v: np.all(np.asarray(v.val) == 1)),
             "and": ((0, 1), _all_ones)}


def is_folded(eqn) -> bool:
    """An op the lowering removes: it returns an operand unchanged, or has literals only."""
    name = eqn.primitive.name
    if all(isinstance(v, jcore.Literal) for v in eqn.invars):
        return True
    if name == "convert_element_type":
        return eqn.invars[0].aval.dtype == eqn.outvars[0].aval.dtype
    if name not in _IDENTITY or len(eqn.invars) != 2:
        return False
    positions, test = _IDENTITY[name]
    for i in positions:
        lit, other = eqn.invars[i], eqn.invars[1 - i]
        if isinstance(lit, jcore.Literal) and other.aval.shape == eqn.outvars[0].aval.shape and test(lit):
            return True
    return False


@register(*ELEMENTWISE)
def elementwise(eqn) -> TheoryCost:
    if is_folded(eqn):
        return TheoryCost()
    out = out_elems(eqn)
    return _cost(eqn, out, out)


@register("bitcast_convert_type")
def bitcast_convert_type(eqn) -> TheoryCost:
    out = out_elems(eqn)
    return _cost(eqn, 0, out)


@register("nextafter", note="XLA expands nextafter into bit manipulations (about 24 ops per f32 element); "
          "counted as 1 flop per element")
def nextafter(eqn) -> TheoryCost:
    return elementwise(eqn)


@register(*TRANSCENDENTAL)
def transcendental(eqn) -> TheoryCost:
    out = out_elems(eqn)
    return _cost(eqn, out, 0, out)


@register(*EXPANDED_SPECIAL, note="XLA expands this special function into a polynomial when lowering; "
          "counted as one transcendental per element")
def special(eqn) -> TheoryCost:
    return transcendental(eqn)


@register("logistic")
def logistic(eqn) -> TheoryCost:
    out = out_elems(eqn)
    return _cost(eqn, F.sigmoid_flops(out), 3 * out, out)


@register("exp2")
def exp2(eqn) -> TheoryCost:
    out = out_elems(eqn)
    return _cost(eqn, out, out, out)


@register("integer_pow")
def integer_pow(eqn) -> TheoryCost:
    y = int(eqn.params["y"])
    a = abs(y)
    muls = (a.bit_length() - 1 + a.bit_count() - 1 if a else 0) + (y < 0)
    out = out_elems(eqn)
    return _cost(eqn, muls * out, muls * out)
