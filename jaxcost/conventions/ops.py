"""The operations a PyTorch counter sees, recognised in jaxcost's theory records.

Peer tools count by ``nn.Module`` type, by ``torch.nn.functional`` call or by aten op;
jaxcost records one :class:`~jaxcost.theory.EqnCost` per jaxpr equation (path, direction,
primitive, cost). :func:`torch_ops` groups the equations of each ``(path, direction)`` in
jaxpr order and names what a torch model doing the same work would have called. The
patterns, on JAX primitives:

=============  ==========================================================  ================
kind           primitive pattern                                           size recorded
=============  ==========================================================  ================
conv           ``conv_general_dilated``                                    dense MACs
linear         ``dot_general`` reading a parameter (``params_read > 0``)     MACs
matmul         ``dot_general`` of two activations (attention, bmm)           MACs
conv_bias,     the ``add`` the theory engine marked as a contraction's      output elements
linear_bias    bias (its accesses are its bias elements only), after a
               ``conv`` / after a ``linear``
batch_norm     a path holding ``rsqrt``, no contraction, no reduction        input elements
               (inference BatchNorm: the statistics are inputs)
norm           a path holding ``rsqrt`` and a reduction, no contraction     input elements
               (LayerNorm, GroupNorm, BatchNorm with batch statistics)
relu           ``max`` (``jax.nn.relu`` is ``max(x, 0)``)                    output elements
relu6          ``max`` then ``min`` of the same size (``jax.nn.relu6``),     output elements
               or ``clamp``
silu           ``logistic`` then ``mul`` of the same size (``x·σ(x)``)        output elements
sigmoid        ``logistic`` alone                                            output elements
gelu           ``erfc``/``erf`` or ``tanh`` (the exact and the tanh GELU)    output elements
softmax        [``reduce_max``, ``max``, ``sub``,] ``exp``, ``reduce_sum``      input elements
               [, ``div``] in a row (``jax.nn.softmax``)
max_pool       ``reduce_window_max``                                         input elements
avg_pool       ``reduce_window_sum`` (and the ``div`` after it)              input elements
global_pool    ``reduce_sum`` then ``div``: a mean (``AdaptiveAvgPool2d(1)``) input elements
add            any other ``add``/``sub`` (residual adds: torch's ``+``)       output elements
mul            any other ``mul``/``div``                                     output elements
elementwise    any other priced elementwise op or transcendental            output elements
other          reductions, sorts, scatters, gathers reading parameters     —
=============  ==========================================================  ================

Every op also keeps its equations' XLA-convention flops and the parameters they read.
Free equations (reshapes, copies, annotations: no flops, no transcendentals, no parameter
read) are no op to any tool and are skipped. Sizes come from the cost fields the rules
record: an elementwise op's output elements are its XLA flops (its transcendentals for
exp, rsqrt, ...); a ``reduce_sum`` of ``n`` elements into ``m`` has ``n − m`` flops and
``n + m`` read-once accesses; a ``reduce_window`` with ``o`` outputs of window ``w`` over
``n`` inputs has ``(w − 1)·o`` flops, ``w·o + o`` naive and ``n + o`` read-once accesses.

Approximations, stated once: a path holds one layer (a normalisation inlined into a
parent's path, next to other work, is not recognised); a ``max`` is a ReLU whatever its
second operand; ``erfc``/``erf``/``tanh`` stand for a whole GELU (its other elementwise ops
fall into ``elementwise``); without parameter information (a plain function analysed
without ``params_argnums``) every ``dot_general`` is a ``matmul`` and no bias is
recognised; a backward convolution is sized as the forward convolution of its path
(torch's ``convolution_backward`` prices each gradient like the forward conv, while the
jaxpr's input-gradient conv is lhs-dilated and its dense count includes the holes); a
transposed convolution (an lhs-dilated forward conv) keeps its dense jaxpr count, holes
included, where torch counts input positions (stride² fewer).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from jaxcost.names import BACKWARD, FORWARD
from jaxcost.theory.registry import EqnCost, TheoryResult
from jaxcost.theory.rules.elementwise import ELEMENTWISE, EXPANDED_SPECIAL, TRANSCENDENTAL

KINDS = ("conv", "linear", "matmul", "conv_bias", "linear_bias", "batch_norm", "norm", "relu", "relu6", "silu",
         "sigmoid", "gelu", "softmax", "max_pool", "avg_pool", "global_pool", "add", "mul", "elementwise", "other")

_CONTRACTIONS = frozenset({"conv_general_dilated", "dot_general", "ragged_dot_general"})
_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin"})
_ELEMENTWISE = frozenset(ELEMENTWISE) | frozenset(TRANSCENDENTAL) | frozenset(EXPANDED_SPECIAL) | {
    "logistic", "exp2", "integer_pow", "nextafter", "bitcast_convert_type"}


@dataclasses.dataclass(frozen=True)
class TorchOp:
    """One operation as a torch counter sees it: ``kind`` (see the module docstring) at
    ``path`` in ``direction``, run ``times`` times (enclosing loops); per execution its dense
    ``macs`` (contractions), ``elements`` (the size its kind is counted by), ``flops_xla``
    (jaxcost's XLA-convention flops of its equations), whether a normalisation is ``affine``,
    the trainable ``params`` it reads and the non-trainable ``stats`` it holds (an inference
    BatchNorm's running mean and variance), and the ``primitives`` it was recognised from."""

    kind: str
    path: str
    direction: str
    times: int = 1
    macs: int = 0
    elements: int = 0
    flops_xla: int = 0
    affine: bool = False
    params: int = 0
    stats: int = 0
    primitives: tuple[str, ...] = ()

    def __repr__(self) -> str:
        size = f"{self.macs:,} MACs" if self.macs else f"{self.elements:,} elements"
        times = f" ×{self.times}" if self.times != 1 else ""
        return f"TorchOp({self.kind} at {self.path or '<root>'} ({self.direction}){times}: {size})"


def _elements(e: EqnCost) -> int:
    """Output elements of an elementwise equation (0 when the lowering folds it away)."""
    return e.flops_xla or e.transcendentals


def _reduce_input(e: EqnCost) -> int:
    """Input elements of a ``reduce_sum``: (read-once accesses + flops) / 2."""
    return (e.accesses_ideal + e.flops_xla) // 2


def _window_input(e: EqnCost) -> int:
    """Input elements of a ``reduce_window``: read-once accesses minus the outputs."""
    return e.accesses_ideal - (e.accesses_naive - e.flops_xla) // 2


def _is_bias(e: EqnCost) -> bool:
    """The engine prices a contraction's bias add at its bias elements only (≤ the output)."""
    return e.primitive in ("add", "add_any") and 0 < e.accesses_naive <= e.flops_xla


def _priced(e: EqnCost) -> bool:
    """An equation a tool can see: it computes something or reads parameters (a ``gather``
    from an embedding table)."""
    return bool(e.macs or e.flops_xla or e.transcendentals or e.params_read)


def _softmax_end(eqns: list[EqnCost], i: int) -> int | None:
    """End (exclusive) of ``jax.nn.softmax`` starting at ``i``: [reduce_max, max, sub,] exp,
    reduce_sum[, div]; ``None`` when the equations from ``i`` are not one."""
    j = i
    while j < len(eqns) and eqns[j].primitive in ("reduce_max", "max", "sub"):
        j += 1
    if j + 1 >= len(eqns) or eqns[j].primitive != "exp" or eqns[j + 1].primitive != "reduce_sum":
        return None
    return j + 3 if j + 2 < len(eqns) and eqns[j + 2].primitive == "div" else j + 2


def _op(kind: str, eqns: Iterable[EqnCost], **sizes) -> TorchOp:
    eqns = list(eqns)
    first = eqns[0]
    return TorchOp(kind, first.path, first.direction, first.count, flops_xla=sum(e.flops_xla for e in eqns),
                   params=sum(e.params_read for e in eqns), primitives=tuple(e.primitive for e in eqns), **sizes)


def _norm(eqns: list[EqnCost]) -> TorchOp:
    """A normalisation layer: sized by its largest elementwise operand (the input)."""
    stats = any(e.primitive in _REDUCTIONS for e in eqns)
    elements = max((_elements(e) for e in eqns if e.primitive in _ELEMENTWISE), default=0)
    rsqrt = sum(e.transcendentals for e in eqns if e.primitive == "rsqrt")
    return _op("norm" if stats else "batch_norm", eqns, elements=elements,
               affine=any(e.params_read for e in eqns), stats=0 if stats else 2 * rsqrt)


def _group(eqns: list[EqnCost]) -> list[TorchOp]:
    """The torch ops of one ``(path, direction)``, its equations in jaxpr order."""
    eqns = [e for e in eqns if _priced(e)]
    names = {e.primitive for e in eqns}
    if "rsqrt" in names and not names & _CONTRACTIONS:
        return [_norm(eqns)]
    out: list[TorchOp] = []
    last = "conv"  # the contraction a bias add belongs to
    i = 0
    while i < len(eqns):
        e = eqns[i]
        nxt = eqns[i + 1] if i + 1 < len(eqns) else None
        p = e.primitive
        pair = nxt is not None and _elements(nxt) == _elements(e)
        if p in _CONTRACTIONS:
            kind = "conv" if p == "conv_general_dilated" else "linear" if e.params_read else "matmul"
            out.append(_op(kind, [e], macs=e.macs))
            last = kind
        elif _is_bias(e):
            out.append(_op(f"{'conv' if last == 'conv' else 'linear'}_bias", [e], elements=e.flops_xla))
        elif p == "max" and pair and nxt.primitive == "min":
            out.append(_op("relu6", [e, nxt], elements=_elements(e)))
            i += 1
        elif p == "logistic" and pair and nxt.primitive == "mul":
            out.append(_op("silu", [e, nxt], elements=_elements(e)))
            i += 1
        elif p in ("reduce_max", "exp") and (end := _softmax_end(eqns, i)) is not None:
            exp = next(x for x in eqns[i:end] if x.primitive == "exp")
            out.append(_op("softmax", eqns[i:end], elements=_elements(exp)))
            i = end - 1
        elif p in ("reduce_window_max", "reduce_window_sum", "reduce_sum"):
            take = [e, nxt] if nxt is not None and nxt.primitive == "div" and p != "reduce_window_max" else [e]
            kind = {"reduce_window_max": "max_pool", "reduce_window_sum": "avg_pool"}.get(p)
            if kind is None:
                kind = "global_pool" if len(take) == 2 else "other"
            size = _reduce_input(e) if p == "reduce_sum" else _window_input(e)
            out.append(_op(kind, take, elements=size))
            i += len(take) - 1
        else:
            kind = _SINGLE.get(p, "elementwise" if p in _ELEMENTWISE else "other")
            out.append(_op(kind, [e], elements=_elements(e) if p in _ELEMENTWISE else 0))
        i += 1
    return out


_SINGLE = {"max": "relu", "clamp": "relu6", "logistic": "sigmoid", "erf": "gelu", "erfc": "gelu", "tanh": "gelu",
           "add": "add", "add_any": "add", "sub": "add", "mul": "mul", "div": "mul"}


def torch_ops(theory: TheoryResult) -> list[TorchOp]:
    """The torch-level operations of ``theory``, layer by layer in order of first appearance
    (see the module docstring).

    A backward convolution is sized as the forward convolution(s) of its path (their mean),
    torch's ``convolution_backward`` convention; without a forward conv there, its own count."""
    groups: dict[tuple[str, str], list[EqnCost]] = {}
    for e in theory.eqns:
        groups.setdefault((e.path, e.direction), []).append(e)
    ops = [op for eqns in groups.values() for op in _group(eqns)]
    forward: dict[str, list[int]] = {}
    for op in ops:
        if op.kind == "conv" and op.direction == FORWARD:
            forward.setdefault(op.path, []).append(op.macs)
    return [dataclasses.replace(op, macs=sum(forward[op.path]) // len(forward[op.path]))
            if op.kind == "conv" and op.direction == BACKWARD and op.path in forward else op
            for op in ops]
