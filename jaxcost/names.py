"""Layer paths from JAX name stacks: the key that joins theory and compiler.

XLA keeps JAX's name stack in each instruction's ``metadata op_name``, e.g.
``jit(f)/transpose(jvp(ResNet))/layer1/0/conv1/conv_general_dilated``. The
layer is the path between the ``jit(...)`` prefix and the primitive name:
``ResNet/layer1/0/conv1``. Transform wrappers are peeled off: ``jvp(...)``
marks the forward pass, ``transpose(...)`` the backward pass, and nested
``jit(...)`` scopes (``jax.nn.relu`` is itself jitted) vanish.
"""

from __future__ import annotations

import dataclasses
import functools
import re

FORWARD = "forward"
BACKWARD = "backward"

_WRAPPED = re.compile(r"^([A-Za-z_][\w.]*)\((.*)\)$", re.DOTALL)
_DROP = {"jit", "pjit"}


@dataclasses.dataclass(frozen=True)
class OpName:
    """An ``op_name`` split into layer ``path``, ``primitive`` and ``direction``."""

    path: str
    primitive: str
    direction: str = FORWARD


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
    """``(path, direction)`` of a name stack without the primitive name."""
    flags: set[str] = set()
    parts = [p for seg in _split_top(stack) if seg for p in _peel(seg, flags)]
    return "/".join(parts), BACKWARD if "transpose" in flags else FORWARD


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

