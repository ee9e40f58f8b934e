"""Walk a ClosedJaxpr and price every equation with its rule.

- Calls (``jit``, ``closed_call``, ``custom_jvp_call``, ``custom_vjp_call``, ``remat``,
  ``shard_map``, ``composite``, ...) are walked in place; ``custom_linear_solve`` walks its
  ``solve`` jaxpr, the one its lowering emits.
- Loops: :func:`trip_count` gives a loop's static trip count (``scan``: its length; ``while``:
  a ``fori_loop`` shape). The body counts × trips, a while's condition × (trips + 1). A
  data-dependent ``while`` counts its body once, with a warning.
- ``cond``: every branch is priced and the costliest (XLA flops) counted, as XLA's cost
  analysis takes the max over a conditional's branches; the warning names the branch.
- Expansions: a primitive JAX lowers through a jaxpr of its own (``random_bits``, ...) is
  priced by walking that jaxpr (``register_expansion``).
- Dead equations (no result used, no effects; e.g. the primal loss inside ``jax.grad``) are
  skipped, as jax's lowering removes them.
- Bias adds: an ``add`` of a contraction's result (``dot_general``, ``conv_general_dilated``)
  and a parameter (through reshapes/broadcasts) is the layer's bias: under the per-layer
  memory models it reads only its bias elements (the output is already in the layer's
  accumulator), so the layer matches Hollemans' input + output + weights-with-bias.
- Gradients: a contraction of the backward pass (``transpose(...)``) is the layer's **input
  gradient** when an operand derives from a parameter (``dx = dy · Wᵀ``) and its **weight
  gradient** when its result has the shape of a parameter the layer's forward contraction read
  (``dW = xᵀ · dy``); activation x activation contractions (attention) only have input
  gradients. Without parameter information the split is left open (``grad=""``).
- No silent zeros: a primitive without a rule is listed in ``unknown`` (name → equations)
  and in the warnings; a rule registered with a note repeats its caveat in the warnings.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
from jax.extend import core as jcore

import jaxcost.theory.rules  # noqa: F401  (registers the rules)
from jaxcost.names import BACKWARD, RECOMPUTE, resolve, split_name_stack
from jaxcost.theory.registry import EqnCost, TheoryCost, TheoryResult, get_expansion, get_rule, note
from jaxcost.theory.rules._avals import nbytes, size
from jaxcost.theory.rules.movement import CHEAP

# Call-like primitives → the parameter that holds the callee's jaxpr.
_CALLS = {"jit": "jaxpr", "pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr", "custom_vjp_call_jaxpr": "fun_jaxpr",
          "remat": "jaxpr", "remat2": "jaxpr", "checkpoint": "jaxpr", "shard_map": "jaxpr", "xla_call": "call_jaxpr",
          "composite": "jaxpr", "custom_vmap_call": "call_jaxpr", "run_state": "jaxpr"}
# Calls jax's lowering emits as a separate function (literal arguments stay opaque inside);
# the others are inlined, so the lowering folds ``x + 0`` with a literal of the caller.
_OUTLINED = frozenset({"jit", "pjit", "closed_call", "core_call", "xla_call", "shard_map"})
_LOOPS = frozenset({"scan", "while", "cond"})
_CONTRACTIONS = frozenset({"dot_general", "conv_general_dilated"})
_BIAS_ADDS = frozenset({"add", "add_any"})


@functools.lru_cache(maxsize=65536)
def _split(stack: str) -> tuple[str, str]:
    return split_name_stack(stack)


def _inner(j):
    """The Jaxpr of a Jaxpr or ClosedJaxpr."""
    return getattr(j, "jaxpr", j)


def _callee(eqn):
    """The jaxpr a call-like equation runs with all its operands (``None`` for others)."""
    key = _CALLS.get(eqn.primitive.name)
    if key is not None:
        return eqn.params.get(key)
    if get_rule(eqn.primitive.name) is None and get_expansion(eqn.primitive.name) is None \
            and eqn.primitive.name not in _LOOPS:
        for k in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
            if isinstance(eqn.params.get(k), (jcore.Jaxpr, jcore.ClosedJaxpr)):
                return eqn.params[k]
    return None


def _expansion(eqn):
    """The jaxpr JAX lowers this equation with, when the primitive is priced that way."""
    expand = get_expansion(eqn.primitive.name)
    return expand(eqn) if expand is not None else None


@functools.lru_cache(maxsize=512)
def _live(jaxpr, live_out: tuple[bool, ...] | None = None) -> tuple[tuple[bool, ...], frozenset]:
    """Backward liveness, as jax's lowering and XLA's dead-code elimination see it: an
    equation is live if an output is used or it has effects; a call reads only the operands
    its callee uses. ``live_out``: which of the jaxpr's outputs its caller uses (default: all).
    Returns the flags and the set of variables live equations read."""
    outs = jaxpr.outvars if live_out is None else [v for v, keep in zip(jaxpr.outvars, live_out) if keep]
    used = {v for v in outs if isinstance(v, jcore.Var)}
    flags = []
    for eqn in reversed(jaxpr.eqns):
        alive = bool(eqn.effects) or any(v in used for v in eqn.outvars)
        if alive:
            sub = _callee(eqn)
            operands = [v for v in eqn.invars if isinstance(v, jcore.Var)]
            if sub is not None and not eqn.effects:
                inner = _inner(sub)
                _, inner_used = _live(inner, tuple(o in used for o in eqn.outvars))
                ops = eqn.invars[len(eqn.invars) - len(inner.invars):]
                operands = [v for iv, v in zip(inner.invars, ops) if isinstance(v, jcore.Var) and iv in inner_used]
            used.update(operands)
        flags.append(alive)
    flags.reverse()
    return tuple(flags), frozenset(used)


def _literal(v) -> int | None:
    return int(v.val) if isinstance(v, jcore.Literal) else None


def trip_count(eqn) -> int | None:
    """Static trip count of a loop equation, ``None`` when it depends on data.

    ``scan``: its ``length``. ``while``: the ``fori_loop`` shape — the condition is one
    ``lt`` of a carried counter (literal start) against a literal or carried-literal bound,
    and the body adds 1 to that counter.
    """
    name = eqn.primitive.name
    if name == "scan":
        return int(eqn.params["length"])
    if name != "while":
        return None
    p = eqn.params
    cnc, bnc = p["cond_nconsts"], p["body_nconsts"]
    cond, body = _inner(p["cond_jaxpr"]), _inner(p["body_jaxpr"])
    if len(cond.eqns) != 1 or cond.eqns[0].primitive.name != "lt" or cond.outvars[0] is not cond.eqns[0].outvars[0]:
        return None
    carry_in, init = list(cond.invars[cnc:]), eqn.invars[cnc + bnc:]

    def value(v, constant: bool):
        """A literal, or a carried value with a literal start (left unchanged when ``constant``)."""
        if isinstance(v, jcore.Literal):
            return _literal(v)
        if v not in carry_in:
            return None
        i = carry_in.index(v)
        if constant and body.outvars[i] is not body.invars[bnc + i]:
            return None
        return _literal(init[i])

    a, b = cond.eqns[0].invars
    if not isinstance(a, jcore.Var) or a not in carry_in:
        return None
    k = carry_in.index(a)
    step = {o: e for e in body.eqns for o in e.outvars}.get(body.outvars[k])
    counter = body.invars[bnc + k]
    if (step is None or step.primitive.name != "add" or counter not in step.invars
            or sorted(_literal(v) or 0 for v in step.invars if v is not counter) != [1]):
        return None
    lo, hi = value(a, False), value(b, True)
    return None if lo is None or hi is None else max(0, hi - lo)


# Ops of splat constants (a literal, or a literal broadcast) that the lowering folds into a
# constant: ``square(broadcast 0.0)`` and then ``x + 0`` disappear (optax's global norm adds the
# squared imaginary part of real gradients: zeros).
_SPLAT = {
    "broadcast_in_dim": lambda a: a, "reshape": lambda a: a, "convert_element_type": lambda a: a,
    "neg": lambda a: -a, "square": lambda a: a * a, "abs": abs,
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "max": max, "min": min,
}


def _propagate_splat(eqn, scope) -> None:
    """Record the outputs of ``eqn`` as literals when its operands are all literals (splats)
    and its value is a closed form of theirs."""
    fold = _SPLAT.get(eqn.primitive.name)
    if fold is None or len(eqn.outvars) != 1 or not eqn.invars:
        return
    if not all(isinstance(v, jcore.Literal) and np.ndim(v.val) == 0 for v in eqn.invars):
        return
    try:
        value = fold(*(v.val for v in eqn.invars))
        out = eqn.outvars[0]
        scope.literals[out] = jcore.Literal(np.asarray(value, dtype=out.aval.dtype)[()], out.aval)
    except (TypeError, ValueError, OverflowError):
        return


def _key(v) -> tuple[int, ...]:
    """A shape up to the order of its dimensions (a weight gradient may come out transposed)."""
    return tuple(sorted(v.aval.shape))


@dataclasses.dataclass
class _Scope:
    """What the walk knows about the variables of one jaxpr: the parameter elements each
    parameter-derived variable comes from, which variables hold a contraction's result, and
    which inputs are literals of the caller (so ``x + 0`` inside a call is seen as such)."""

    params: dict
    contracted: set
    literals: dict

    def enter(self, inner_invars, operands, fixed: int | None = None) -> _Scope:
        """The scope of a callee whose inputs are ``operands``; only the first ``fixed`` of them
        (default: all) keep a literal's value (a loop's carry changes from trip to trip)."""
        params, contracted, literals = {}, set(), {}
        for i, (iv, v) in enumerate(zip(inner_invars, operands)):
            lit = v if isinstance(v, jcore.Literal) else self.literals.get(v)
            if lit is not None:
                if fixed is None or i < fixed:
                    literals[iv] = lit
                continue
            if v in self.params:
                params[iv] = self.params[v]
            if v in self.contracted:
                contracted.add(iv)
        return _Scope(params, contracted, literals)


class _Walker:
    def __init__(self, know_params: bool):
        self.warnings: list[str] = []
        self.unknown: dict[str, int] = {}
        self.noted: dict[str, int] = {}
        self.know_params = know_params
        # per layer path: sorted shapes of the parameters its forward contractions read
        self.weights: dict[str, set[tuple[int, ...]]] = {}

    def walk(self, jaxpr, prefix: str, count: int, scope: _Scope, out: list[EqnCost], live_out=None) -> None:
        flags, used = _live(jaxpr, None if live_out is None else tuple(live_out))
        for eqn, alive in zip(jaxpr.eqns, flags):
            if not alive:
                continue  # dead result (printed ``_ = ...``): lowering drops it, so do we
            if scope.literals and any(isinstance(v, jcore.Var) and v in scope.literals for v in eqn.invars):
                eqn = eqn.replace(invars=[scope.literals.get(v, v) if isinstance(v, jcore.Var) else v
                                          for v in eqn.invars])
            name = eqn.primitive.name
            _propagate_splat(eqn, scope)
            keep = [o in used for o in eqn.outvars]
            ns = str(eqn.source_info.name_stack)
            stack = f"{prefix}/{ns}" if prefix and ns else (prefix or ns)
            sub = _callee(eqn)
            if sub is not None:
                inner = _inner(sub)
                operands = eqn.invars[len(eqn.invars) - len(inner.invars):] if inner.invars else []
                # a remat's operands pass through an optimization barrier: no folding inside
                barrier = name in ("remat2", "checkpoint", "remat") and eqn.params.get("prevent_cse", True)
                fixed = 0 if name in _OUTLINED or barrier else None
                self.walk(inner, stack, count, scope.enter(inner.invars, operands, fixed), out, keep)
            elif name == "scan":
                self._scan(eqn, stack, count, scope, out)
            elif name == "while":
                self._while(eqn, stack, count, scope, out)
            elif name == "cond":
                self._cond(eqn, stack, count, scope, out)
            elif name == "custom_linear_solve":
                self._linear_solve(eqn, stack, count, scope, out)
            elif (expansion := _expansion(eqn)) is not None:
                inner = _inner(expansion)
                self.walk(inner, stack, count, scope.enter(inner.invars, eqn.invars, 0), out, keep)
            else:
                out.append(self._price(eqn, name, stack, count, scope))

    def _price(self, eqn, name: str, stack: str, count: int, scope: _Scope) -> EqnCost:
        rule = get_rule(name)
        if rule is None:
            self.unknown[name] = self.unknown.get(name, 0) + 1
            c = TheoryCost()
        else:
            c = rule(eqn)
            if note(name):
                self.noted[name] = self.noted.get(name, 0) + 1
        invars = [v for v in eqn.invars if isinstance(v, jcore.Var)]
        derived = [v for v in invars if v in scope.params]
        read = 0
        if derived:
            if name in CHEAP:
                scope.params.update((o, scope.params[derived[0]]) for o in eqn.outvars)
            else:
                read = sum(scope.params[v] for v in derived)
        if name in _CONTRACTIONS or (name in CHEAP and any(v in scope.contracted for v in invars)):
            scope.contracted.update(eqn.outvars)
        if name in _BIAS_ADDS and len(invars) == 2:
            a, b = invars
            bias = b if a in scope.contracted else a if b in scope.contracted else None
            if bias is not None and bias in scope.params:
                c = dataclasses.replace(c, accesses_naive=scope.params[bias], accesses_ideal=scope.params[bias])
        c = dataclasses.replace(c, params_read=read, bytes_in=sum(nbytes(v) for v in eqn.invars),
                                bytes_out=sum(nbytes(v) for v in eqn.outvars))
        path, direction = _split(stack)
        grad = self._grad(eqn, path, direction, derived) if name in _CONTRACTIONS else ""
        return EqnCost(path, direction, name, c, count, grad)

    def _grad(self, eqn, path: str, direction: str, derived: list) -> str:
        """``input`` / ``weight`` for a backward contraction (see the module docstring);
        a forward one records the shapes of the parameters it reads."""
        if direction != BACKWARD:
            if direction != RECOMPUTE:
                self.weights.setdefault(path, set()).update(_key(v) for v in derived)
            return ""
        if not self.know_params:
            return ""
        if not derived and _key(eqn.outvars[0]) in self.weights.get(path, ()):
            return "weight"
        return "input"

    def _scan(self, eqn, stack, count, scope, out):
        body = _inner(eqn.params["jaxpr"])
        fixed = eqn.params["num_consts"]
        self.walk(body, stack, count * trip_count(eqn), scope.enter(body.invars, eqn.invars, fixed), out)

    def _while(self, eqn, stack, count, scope, out):
        p = eqn.params
        cnc, bnc = p["cond_nconsts"], p["body_nconsts"]
        body, cond = _inner(p["body_jaxpr"]), _inner(p["cond_jaxpr"])
        carry = list(eqn.invars[cnc + bnc:])
        trips = trip_count(eqn)
        if trips is None:
            self.warnings.append(f"while at {_split(stack)[0] or '<root>'}: trip count unknown, body counted once")
        body_n, cond_n = (1, 1) if trips is None else (trips, trips + 1)
        self.walk(cond, stack, count * cond_n, scope.enter(cond.invars, list(eqn.invars[:cnc]) + carry, cnc), out)
        self.walk(body, stack, count * body_n,
                  scope.enter(body.invars, list(eqn.invars[cnc:cnc + bnc]) + carry, bnc), out)

    def _cond(self, eqn, stack, count, scope, out):
        operands = eqn.invars[1:]
        priced = []
        for br in eqn.params["branches"]:
            j = _inner(br)
            tmp: list[EqnCost] = []
            self.walk(j, stack, count, scope.enter(j.invars, operands), tmp)
            total = TheoryCost.sum(e.total for e in tmp)
            priced.append(((total.flops_xla, total.transcendentals), tmp))
        best = max(range(len(priced)), key=lambda i: priced[i][0])
        self.warnings.append(f"cond at {_split(stack)[0] or '<root>'}: branch {best} of {len(priced)} counted "
                             f"(the costliest, as XLA's conditional takes the max)")
        out.extend(priced[best][1])

    def _linear_solve(self, eqn, stack, count, scope, out):
        lengths, jaxprs = eqn.params["const_lengths"], eqn.params["jaxprs"]
        start = lengths.matvec + lengths.vecmat
        consts = list(eqn.invars[start:start + lengths.solve])
        b = list(eqn.invars[sum((lengths.matvec, lengths.vecmat, lengths.solve, lengths.transpose_solve)):])
        solve = _inner(jaxprs.solve)
        self.walk(solve, stack, count, scope.enter(solve.invars, consts + b), out)

    def report(self) -> list[str]:
        lines = list(self.warnings)
        lines += [f"primitive '{n}' ({k}×): {note(n)}" for n, k in sorted(self.noted.items())]
        lines += [f"no theory rule for primitive '{n}' ({k}×): its flops are not counted"
                  for n, k in sorted(self.unknown.items())]
        return lines


def analyze_jaxpr(closed_jaxpr, *, param_invars=frozenset()) -> TheoryResult:
    """Theoretical cost of every equation of ``closed_jaxpr`` (``jax.make_jaxpr(fn)(*args)``).

    ``param_invars``: indices into the flat invars that hold model parameters; operands derived
    from them through cheap ops (convert/reshape/transpose/broadcast) count as ``params_read``
    (the elements of the parameter they come from) and mark bias adds.
    """
    jaxpr = _inner(closed_jaxpr)
    scope = _Scope({jaxpr.invars[i]: size(jaxpr.invars[i]) for i in param_invars}, set(), {})
    w = _Walker(know_params=bool(param_invars))
    out: list[EqnCost] = []
    w.walk(jaxpr, "", 1, scope, out)
    differentiated = any(e.direction in (BACKWARD, RECOMPUTE) for e in out)
    out = [e if e.direction == (d := resolve(e.direction, differentiated)) else dataclasses.replace(e, direction=d)
           for e in out]
    return TheoryResult(out, TheoryCost.sum(e.total for e in out), w.report(), dict(w.unknown))

