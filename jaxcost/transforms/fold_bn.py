"""Inference-time BatchNorm folding for Flax NNX and linen models.

At inference a BatchNorm (Ioffe & Szegedy, arXiv 1502.03167) that directly
follows a convolution (or a dense layer) is an affine map per output channel
and can be absorbed into that layer (Jacob et al., arXiv 1712.05877, Sec. 3.2)::

    s  = gamma / sqrt(var + eps)
    W' = W * s            (per output channel, i.e. the kernel's last axis)
    b' = (b - mean) * s + beta

Conv-BN-ReLU folds; Conv-ReLU-BN does not (a ReLU sits between them); a BN in
front of a conv is not folded (in general it cannot be: zero padding does not
commute with the shift); a BN in training mode (``use_running_average=False``)
is not folded (it normalises with batch statistics).

Pairs are found on the traced graph, never by layer names: the model is traced
once with :func:`jax.make_jaxpr` while ``__call__`` of ``nnx.Conv``,
``nnx.Linear`` and ``nnx.BatchNorm`` is wrapped to record, for each call, the
module instance and the jaxpr variables of its input and output.  A BN is
foldable when its input is exactly the output of a Conv/Linear call, that
output has no consumer other than the BN (checked by scanning the whole jaxpr,
sub-jaxprs included, for other uses of the variable), both modules are called
exactly once, and the BN normalises the last (channel) axis.

Tracing uses ``nnx.split``/``nnx.merge`` on the state, so it works with
abstract inputs (``jax.ShapeDtypeStruct``) and even abstract models (from
``nnx.eval_shape``) -- but *folding* rewrites weights, so it needs real
arrays: an abstract model raises :class:`ValueError` when there is something
to fold.  The input model is never mutated; the result holds a clone.

Linen models go through the same pair finder: ``fold_batchnorm(apply_fn,
variables, *args)`` traces ``apply_fn`` under :func:`flax.linen.intercept_methods`
(recording ``nn.Conv`` / ``nn.Dense`` / ``nn.BatchNorm`` calls by module path)
and returns new variables plus an ``apply_fn`` that skips the folded BNs and
adds the new bias of convs declared without one.

Left out: only Conv/Linear/Dense (and subclasses) followed by BatchNorm are
considered (not ConvTranspose, Einsum, LayerNorm/GroupNorm, or BN folded
backwards into a following conv).
"""

from __future__ import annotations

from flax import nnx

from jaxcost.transforms.bn_core import (  # noqa: F401  (the reasons are part of the API)
    REASON_AFTER_OP,
    REASON_AXIS,
    REASON_BEFORE_CONV,
    REASON_CONSUMERS,
    REASON_MASK,
    REASON_NOT_CALLED,
    REASON_SHARED,
    REASON_TRAINING,
    FoldResult,
)
from jaxcost.transforms.fold_linen import fold_linen
from jaxcost.transforms.fold_nnx import Identity, fold_nnx

__all__ = ["FoldResult", "Identity", "fold_batchnorm"]


def fold_batchnorm(model, *example_args, **kwargs) -> FoldResult:
    """Fold every inference-mode BatchNorm that directly follows a Conv or a
    Linear/Dense layer into that layer's kernel and bias.

    NNX: ``fold_batchnorm(model, *example_args)``; linen:
    ``fold_batchnorm(apply_fn, variables, *example_args)`` where ``apply_fn``
    is a linen ``Module`` (its ``apply``) or any ``f(variables, *args)``.
    ``kwargs`` are passed to the forward call (e.g. ``train=False``).

    ``example_args``: inputs for one forward pass (arrays or
    ``jax.ShapeDtypeStruct``); for NNX, if omitted, a ``(1, 32, .., 32, C)``
    input is guessed from the first Conv (or ``(1, C)`` from the first
    Linear). The model is traced once, abstractly, and never mutated.
    Returns a :class:`FoldResult`: for NNX its ``model`` is an equivalent
    clone in which folded BNs are replaced by :class:`Identity`; for linen,
    ``apply_fn`` and ``variables``.

    Raises ``ValueError`` if the weights are abstract (``eval_shape``) and
    something would be folded: folding needs real weights.
    """
    if not isinstance(model, nnx.Module):
        if not example_args or not isinstance(example_args[0], dict):
            raise TypeError(
                "fold_batchnorm: expected an nnx.Module, or a linen apply function/Module "
                f"followed by its variables dict and example inputs; got {type(model).__name__}")
        return fold_linen(model, example_args[0], example_args[1:], kwargs)
    return fold_nnx(model, example_args, kwargs)
