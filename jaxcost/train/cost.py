"""What one training step costs, split by direction; model FLOPs vs hardware FLOPs; MFU, HFU.

Every theory equation and every HLO instruction already carries a direction
(:mod:`jaxcost.names`): ``forward``, ``backward`` (split into input- and weight-gradient
contractions by the theory engine), ``recompute`` (rematerialised forward work) and
``optimizer`` (the update outside the differentiated function). :func:`step_cost` sums both
sides per direction.

Two FLOP counts, as PaLM (Chowdhery et al. 2022, arXiv 2204.02311, appendix B) defines MFU
and HFU:

- **model FLOPs**: the contractions (``dot_general``, ``conv_general_dilated``) of the forward
  and backward passes, from the theory engine (2 per multiply-accumulate that reads real
  input, XLA's convention). Independent of rematerialisation and of what the compiler
  did; MFU = model FLOPs / (step time x peak).
- **hardware FLOPs**: what XLA compiled, every op, recompute included (XLA's
  ``cost_analysis`` of the optimized module, loop bodies x trip count); HFU = hardware
  FLOPs / (step time x peak).
"""

from __future__ import annotations

import dataclasses

from jaxcost.names import BACKWARD, DIRECTIONS, FORWARD, RECOMPUTE
from jaxcost.report.format import si
from jaxcost.report.show import Shown

_CONTRACTIONS = ("dot_general", "conv_general_dilated")


@dataclasses.dataclass(frozen=True)
class DirectionCost:
    """One direction of a step: theory (all equations, and contractions only) and XLA
    (optimized and lowered module, XLA's convention: loop bodies once; the optimized figures
    are None when the step was not compiled)."""

    direction: str
    theory_flops: int = 0
    theory_contraction_flops: int = 0
    xla_flops: float | None = 0.0
    xla_flops_unoptimized: float = 0.0
    xla_bytes: float | None = 0.0

    def __repr__(self) -> str:
        return (f"{self.direction}: theory {si(self.theory_flops)} (contractions {si(self.theory_contraction_flops)}),"
                f" XLA {si(self.xla_flops)} (lowered {si(self.xla_flops_unoptimized)})")


@dataclasses.dataclass(frozen=True)
class StepCost(Shown):
    """A training step's cost per direction (``directions``), its backward contractions
    split into ``input_grad`` / ``weight_grad`` flops (theory), and the two FLOP counts
    behind MFU and HFU (see the module docstring). Basis: one step on one device."""

    directions: dict[str, DirectionCost]
    input_grad_flops: int
    weight_grad_flops: int
    model_flops: int
    hardware_flops: float

    def __getitem__(self, direction: str) -> DirectionCost:
        return self.directions.get(direction, DirectionCost(direction))

    @property
    def backward_ratio(self) -> float:
        """Backward / forward contraction flops (2 for a net whose every layer needs an input
        and a weight gradient: the "3x rule" says forward + backward = 3 x forward)."""
        f = self[FORWARD].theory_contraction_flops
        return self[BACKWARD].theory_contraction_flops / f if f else float("nan")

    @property
    def recompute_flops(self) -> float | None:
        """What rematerialisation added, as XLA compiled it."""
        return self[RECOMPUTE].xla_flops

    def __repr__(self) -> str:
        parts = ", ".join(f"{d}={si(c.theory_flops)}" for d, c in self.directions.items())
        return (f"StepCost(model={si(self.model_flops)}, hardware={si(self.hardware_flops)}, "
                f"theory[{parts}], backward/forward={self.backward_ratio:.2f})")

    def __rich__(self):
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        t = Table(title="Training step by direction (flops; theory loops x trips, XLA loop bodies once)")
        for col in ("direction", "theory", "theory: contractions", "XLA optimized", "XLA lowered"):
            t.add_column(col, justify="left" if col == "direction" else "right", no_wrap=True)
        for row in self.rows():
            t.add_row(*row)
        note = Text(f"model FLOPs {si(self.model_flops)} (forward + backward contractions, theory: what MFU counts); "
                    f"hardware FLOPs {si(self.hardware_flops)} (XLA compiled, recompute included: HFU)\n"
                    f"backward contractions: input gradients {si(self.input_grad_flops)} + weight gradients "
                    f"{si(self.weight_grad_flops)}; backward/forward {self.backward_ratio:.2f} (2.00 = the 3x rule)")
        return Group(t, note)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        """``(direction, theory, contractions, XLA optimized, XLA lowered)`` as text."""
        return [(c.direction, si(c.theory_flops), si(c.theory_contraction_flops), si(c.xla_flops),
                 si(c.xla_flops_unoptimized)) for c in self.directions.values()]


def step_cost(analysis) -> StepCost:
    """Split ``analysis`` (of a training step) by direction; see :class:`StepCost`."""
    theory, contractions = {}, {}
    grads = {"input": 0, "weight": 0}
    if analysis.theory is not None:
        for e in analysis.theory.eqns:
            flops = e.total.flops_xla
            theory[e.direction] = theory.get(e.direction, 0) + flops
            if e.primitive in _CONTRACTIONS:
                contractions[e.direction] = contractions.get(e.direction, 0) + flops
            if e.grad:
                grads[e.grad] += flops
    xla: dict[str, list[float]] = {}
    for row in analysis.layers:
        acc = xla.setdefault(row.direction, [0.0, 0.0, 0.0])
        acc[0] += row.flops
        acc[1] += row.flops_unoptimized
        acc[2] += row.bytes_accessed
    present = [d for d in DIRECTIONS if d in theory or d in xla]
    compiled = analysis.compiled

    def cost(d: str) -> DirectionCost:
        opt, unopt, b = xla.get(d, (0.0, 0.0, 0.0))
        return DirectionCost(d, theory.get(d, 0), contractions.get(d, 0), opt if compiled else None, unopt,
                             b if compiled else None)

    directions = {d: cost(d) for d in present}
    model = contractions.get(FORWARD, 0) + contractions.get(BACKWARD, 0)
    hardware = analysis.corrected.flops if analysis.compiled else analysis.compiler_unoptimized.flops or 0.0
    return StepCost(directions, grads["input"], grads["weight"], model, float(hardware))


@dataclasses.dataclass(frozen=True)
class Term:
    """One term of a closed form next to the theory engine's count, with the signed
    differences that take one to the other (``closed + sum(differences) == theory``)."""

    name: str
    closed_form: int
    theory: int
    differences: tuple[tuple[str, int], ...]

    def __repr__(self) -> str:
        return f"Term({self.name}: closed form {si(self.closed_form)}, theory {si(self.theory)})"


def closed_form_check(analysis, *, tokens: int, attention: list[tuple[int, int, int, bool]]) -> list[Term]:
    """A transformer training step against 6·N·T + the attention term (PaLM, arXiv
    2204.02311, appendix B; :func:`jaxcost.formulas.dense_training_flops`,
    :func:`~jaxcost.formulas.attention_training_flops`), term by term.

    ``tokens``: T, tokens per step; ``attention``: one ``(layers, context, d_attn, causal)``
    per attention stack (an encoder-decoder has self-attention in both and cross-attention).
    The theory side: forward + backward contractions that read a parameter or produce a
    weight gradient (the dense term), and those between two activations (attention).
    """
    from jaxcost.theory import formulas

    th = analysis.theory
    if th is None:
        raise ValueError("closed_form_check needs the theory: analyze(..., theory=True)")
    fwd_w = fwd_a = bwd_in_w = bwd_in_a = bwd_w = n_matmul = 0
    for e in th.eqns:
        if e.primitive not in _CONTRACTIONS:
            continue
        flops = e.total.flops_xla
        if e.direction == FORWARD:
            if e.params_read:
                fwd_w += flops
                n_matmul += e.params_read * e.count
            else:
                fwd_a += flops
        elif e.direction == BACKWARD:
            if e.grad == "weight":
                bwd_w += flops
            elif e.params_read:
                bwd_in_w += flops
            else:
                bwd_in_a += flops
    n = analysis.params
    dense_closed = formulas.dense_training_flops(n, tokens)
    dense_theory = fwd_w + bwd_in_w + bwd_w
    no_matmul = -formulas.dense_training_flops(n - n_matmul, tokens)
    missing_input = bwd_in_w - fwd_w  # a layer whose input needs no gradient (the first one)
    dense = Term("dense: 6·N·T", dense_closed, dense_theory, (
        (f"{n - n_matmul:,} parameters no matmul reads (embedding tables read by a gather, biases, norms)",
         no_matmul),
        ("input gradients not computed (the first layer's input needs none)", missing_input),
        ("tokens per weight differ from T (shared weights read twice, tokens a layer never sees)",
         dense_theory - dense_closed - no_matmul - missing_input)))
    att_closed = sum(formulas.attention_training_flops(layers, ctx, d, tokens, causal)
                     for layers, ctx, d, causal in attention)
    att_theory = fwd_a + bwd_in_a
    unmasked = sum(formulas.attention_training_flops(layers, ctx, d, tokens, False)
                   - formulas.attention_training_flops(layers, ctx, d, tokens, True)
                   for layers, ctx, d, causal in attention if causal)
    att = Term("attention: 12·L·d·S·T", att_closed, att_theory, (
        ("causal halves not skipped (the masked scores are computed, then masked)", unmasked),
        ("other (shapes the closed form does not model)", att_theory - att_closed - unmasked)))
    return [dense, att]
