"""Elementwise ops: 1 FLOP per output element (XLA and textbook); transcendentals apart.

Transcendentals (exp, log, tanh, logistic, rsqrt, sqrt, pow, sin, cos, ...) count 0 XLA
flops and 1 transcendental per element (XLA's HloCostAnalysis convention); ``logistic`` is
lowered by jax to neg/exp/add/divide, so it counts 3 XLA flops + 1 transcendental. Textbook: one
FLOP per transcendental, except ``logistic`` = 4 (seed 002: neg, exp, add, div).
``erf`` stays one transcendental in the lowered HLO (checked, jax 0.10 CPU); ``erf_inv``/
``lgamma``/``digamma`` are counted as 1 transcendental here though XLA may expand them.
``integer_pow`` x**y counts the multiplies of square-and-multiply.
"""

from __future__ import annotations

from jaxcost.theory.registry import Cost, rule
from jaxcost.theory.rules._avals import in_elems, out_elems

ELEMENTWISE = (
    "add", "sub", "mul", "div", "rem", "max", "min", "neg", "abs", "sign", "floor", "ceil", "round",
    "select_n", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "xor", "convert_element_type",
    "clamp", "nextafter", "is_finite", "square", "reciprocal", "add_any", "shift_left",
    "shift_right_logical", "shift_right_arithmetic", "population_count", "real", "imag", "conj",
    "complex", "copysign",
)
TRANSCENDENTAL = (
    "exp", "exp2", "log", "tanh", "logistic", "rsqrt", "sqrt", "pow", "sin", "cos", "tan", "erf",
    "erfc", "erf_inv", "expm1", "log1p", "atan2", "cbrt", "asin", "acos", "atan", "sinh", "cosh",
    "asinh", "acosh", "atanh", "lgamma", "digamma",
)


def _io(eqn, out):
    return in_elems(eqn) + out


@rule(*ELEMENTWISE)
def elementwise(eqn) -> Cost:
    out = out_elems(eqn)
    return Cost(flops_textbook=out, flops_xla=out, accesses_naive=_io(eqn, out), accesses_ideal=_io(eqn, out))


@rule(*TRANSCENDENTAL)
def transcendental(eqn) -> Cost:
    out = out_elems(eqn)
    logistic = eqn.primitive.name == "logistic"
    # XLA's lowering of logistic = neg, exp, add, divide: 3 flops + 1 transcendental.
    return Cost(flops_textbook=(4 if logistic else 1) * out, flops_xla=3 * out if logistic else 0,
                transcendentals=out, accesses_naive=_io(eqn, out),
                accesses_ideal=_io(eqn, out))


@rule("integer_pow")
def integer_pow(eqn) -> Cost:
    y = int(eqn.params["y"])
    a = abs(y)
    muls = (a.bit_length() - 1 + a.bit_count() - 1 if a else 0) + (y < 0)
    out = out_elems(eqn)
    return Cost(flops_textbook=muls * out, flops_xla=muls * out, accesses_naive=_io(eqn, out),
                accesses_ideal=_io(eqn, out))
