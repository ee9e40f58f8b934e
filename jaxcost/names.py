"""Layer paths from JAX name stacks: the key that joins theory and compiler.

XLA keeps JAX's name stack in each instruction's ``metadata op_name``, e.g.
``jit(f)/transpose(jvp(ResNet))/layer1/0/conv1/conv_general_dilated``. The
layer is the path between the ``jit(...)`` prefix and the primitive name:
``ResNet/layer1/0/conv1``. Transform wrappers are peeled off: ``jvp(...)``
marks the forward pass, ``transpose(...)`` the backward pass, and nested
``jit(...)`` scopes (``jax.nn.relu`` is itself jitted) vanish.

Directions of a training step (``jax.grad`` / ``nnx.value_and_grad`` + an update):

- ``forward``: under ``jvp(...)`` (or the whole program when nothing is differentiated);
- ``backward``: under ``transpose(...)``;
- ``recompute``: forward work re-run in the backward pass by ``jax.checkpoint`` /
  ``nnx.remat`` / ``nn.remat`` (the ``rematted_computation`` scope; the ``checkpoint``
  scope around it is dropped from the path);
- ``optimizer``: outside the differentiated function in a program that has a backward
  pass: the optimizer update and any other bookkeeping of the step.

A name stack alone cannot tell ``forward`` from ``optimizer`` (neither is wrapped when the
program differentiates nothing): :func:`split_name_stack` returns :data:`PLAIN` for an
unwrapped stack, and :func:`resolve` settles it once the whole program has been seen.
"""

from __future__ import annotations

import dataclasses
import functools
import re

FORWARD = "forward"
BACKWARD = "backward"
RECOMPUTE = "recompute"
OPTIMIZER = "optimizer"
PLAIN = ""  # no transform around it: forward, or the optimizer of a training step
DIRECTIONS = (FORWARD, BACKWARD, RECOMPUTE, OPTIMIZER)
_REMAT_SCOPES = {"checkpoint", "rematted_computation"}

_WRAPPED = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.DOTALL)
_DROP = {"jit", "pjit"}


@dataclasses.dataclass(frozen=True)
class OpName:
    """An ``op_name`` split into layer ``path``, ``primitive`` and ``direction``."""

    path: str
    primitive: str
    direction: str = PLAIN


def _split_top(text: str) -> list[str]:
    """Split on ``/`` outside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "/" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _peel(segment: str, flags: set[str]) -> list[str]:
    """Unwrap ``transform(inner)`` segments, recording transforms in ``flags``."""
    m = _WRAPPED.match(segment)
    if not m:
        return [segment] if segment else []
    name, inner = m.groups()
    flags.add(name)
    if name in _DROP:
        return []
    return [p for s in _split_top(inner) for p in _peel(s, flags)]


@functools.lru_cache(maxsize=1 << 16)
def split_name_stack(stack: str) -> tuple[str, str]:
    """``(path, direction)`` of a name stack without the primitive name; the direction is
    :data:`PLAIN` when no transform wraps it (see :func:`resolve`).

    >>> split_name_stack("transpose(jvp(Net))/checkpoint/rematted_computation/blk/conv")
    ('Net/blk/conv', 'recompute')
    """
    flags: set[str] = set()
    parts: list[str] = []
    previous: list[str] | None = None
    for seg in _split_top(stack):
        if seg in _REMAT_SCOPES:
            flags.add(seg)
            continue
        peeled = _peel(seg, flags) if seg else []
        # a remat inside a transpose repeats its scope: transpose(jvp(blk))/jvp(blk)/...
        if peeled and peeled == previous and _WRAPPED.match(seg):
            continue
        previous = peeled if _WRAPPED.match(seg) else None
        parts += peeled
    if "rematted_computation" in flags:
        direction = RECOMPUTE
    elif "transpose" in flags:
        direction = BACKWARD
    elif flags & {"jvp", "checkpoint"}:
        direction = FORWARD
    else:
        direction = PLAIN
    return "/".join(parts), direction


def resolve(direction: str, differentiated: bool) -> str:
    """The direction of an op whose name stack gave ``direction``, in a program that has
    (``differentiated``) or has not a backward pass: :data:`PLAIN` is the optimizer update
    of a training step and the forward pass of anything else."""
    if direction != PLAIN:
        return direction
    return OPTIMIZER if differentiated else FORWARD


@functools.lru_cache(maxsize=1 << 16)
def split_op_name(op_name: str) -> OpName:
    """Split an HLO ``op_name`` (or ``name_stack/primitive``) into its parts.

    >>> split_op_name("jit(f)/transpose(jvp(Net))/conv/conv_general_dilated")
    OpName(path='Net/conv', primitive='conv_general_dilated', direction='backward')
    >>> split_op_name("jit(f)/net/mul;jit(f)/net/broadcast_in_dim").path  # merged by XLA
    'net'
    """
    if not op_name:
        return OpName("", "")
    # XLA joins the names of instructions it merged with ";": the first one names the result
    op_name = op_name.split(";", 1)[0]
    stack, _, primitive = op_name.rpartition("/")
    if not stack and _WRAPPED.match(primitive):
        # a bare scope such as "jit(relu)": no primitive name.
        stack, primitive = primitive, ""
    path, direction = split_name_stack(stack)
    return OpName(path, primitive, direction)

