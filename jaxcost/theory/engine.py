"""Walk a ClosedJaxpr and apply the rules, recursing into call-like primitives.

Recursion: pjit / closed_call / core_call / custom_jvp_call / custom_vjp_call / remat
(checkpoint) are walked once; ``scan`` bodies are walked with count × length; ``while``
bodies × trip count when the loop is a static fori_loop (literal bounds, ``lt`` condition),
else once with a warning; ``cond`` takes the branch with the most XLA flops, with a warning.
Dead equations (no result used, no effects; e.g. the primal loss inside ``jax.grad``) are
skipped, as jax's lowering removes them. Unknown primitives are listed in ``unknown`` (name → count), never silently zero.
"""

from __future__ import annotations

import functools

from jax.extend import core as jcore

import jaxcost.theory.rules  # noqa: F401  (registers the rules)
from jaxcost.names import split_name_stack
from jaxcost.theory.registry import Cost, EqnCost, TheoryResult, TheoryTotals, get_rule
from jaxcost.theory.rules._avals import nbytes, size
from jaxcost.theory.rules.movement import CHEAP

_ZERO = Cost()


def _live(jaxpr) -> list[bool]:
    """Backward liveness: an equation is live if an output is used or it has effects."""
    used = {v for v in jaxpr.outvars if isinstance(v, jcore.Var)}
    flags = []
    for eqn in reversed(jaxpr.eqns):
        alive = bool(eqn.effects) or any(v in used for v in eqn.outvars)
        if alive:
            used.update(v for v in eqn.invars if isinstance(v, jcore.Var))
        flags.append(alive)
    flags.reverse()
    return flags
_CALLS = {"pjit": "jaxpr", "closed_call": "call_jaxpr", "core_call": "call_jaxpr",
          "custom_jvp_call": "call_jaxpr", "custom_vjp_call": "call_jaxpr",
          "custom_vjp_call_jaxpr": "fun_jaxpr", "remat": "jaxpr", "remat2": "jaxpr", "checkpoint": "jaxpr",
          "custom_lin": None, "shard_map": "jaxpr", "xla_call": "call_jaxpr"}


@functools.lru_cache(maxsize=65536)
def _split(stack: str) -> tuple[str, str]:
    return split_name_stack(stack)


def _inner(j):
    """(Jaxpr, consts-free) from a Jaxpr or ClosedJaxpr."""
    return getattr(j, "jaxpr", j)


class _Walker:
    def __init__(self):
        self.eqns: list[EqnCost] = []
        self.warnings: list[str] = []
        self.unknown: dict[str, int] = {}

    def walk(self, jaxpr, prefix: str, count: int, params: set, out: list[EqnCost]) -> None:
        for eqn, alive in zip(jaxpr.eqns, _live(jaxpr)):
            if not alive:
                continue  # dead result (printed ``_ = ...``): lowering drops it, so do we
            name = eqn.primitive.name
            ns = str(eqn.source_info.name_stack)
            stack = f"{prefix}/{ns}" if prefix and ns else (prefix or ns)
            sub = self._subcall(eqn, name)
            if sub is not None:
                inner = _inner(sub)
                inner_params = {iv for iv, v in zip(inner.invars, eqn.invars[-len(inner.invars):] if inner.invars else [])
                                if isinstance(v, jcore.Var) and v in params} if params else set()
                self.walk(inner, stack, count, inner_params, out)
                continue
            if name == "scan":
                self._scan(eqn, stack, count, params, out)
                continue
            if name == "while":
                self._while(eqn, stack, count, params, out)
                continue
            if name == "cond":
                self._cond(eqn, stack, count, params, out)
                continue
            r = get_rule(name)
            if r is None:
                self.unknown[name] = self.unknown.get(name, 0) + 1
                c = _ZERO
            else:
                c = r(eqn)
            pr = 0
            if params:
                derived = [v for v in eqn.invars if isinstance(v, jcore.Var) and v in params]
                if derived:
                    if name in CHEAP:
                        params.update(eqn.outvars)
                    else:
                        pr = sum(size(v) for v in derived)
            path, direction = _split(stack)
            out.append(EqnCost(path, direction, name, c.macs, c.macs_valid, c.flops_textbook, c.flops_xla,
                               c.transcendentals, pr, sum(nbytes(v) for v in eqn.invars),
                               sum(nbytes(v) for v in eqn.outvars), c.accesses_naive, c.accesses_ideal,
                               c.padding_taps, count))

    @staticmethod
    def _subcall(eqn, name):
        key = _CALLS.get(name)
        if key and key in eqn.params:
            return eqn.params[key]
        if name not in _CALLS and get_rule(name) is None and name not in ("scan", "while", "cond"):
            for k in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
                if k in eqn.params:
                    return eqn.params[k]
        return None

    def _scan(self, eqn, stack, count, params, out):
        body = _inner(eqn.params["jaxpr"])
        length = int(eqn.params["length"])
        ip = {iv for iv, v in zip(body.invars, eqn.invars) if isinstance(v, jcore.Var) and v in params} if params else set()
        self.walk(body, stack, count * length, ip, out)

    def _while(self, eqn, stack, count, params, out):
        p = eqn.params
        body = _inner(p["body_jaxpr"])
        cnc, bnc = p["cond_nconsts"], p["body_nconsts"]
        trips = _static_trip_count(eqn, _inner(p["cond_jaxpr"]), cnc, bnc)
        if trips is None:
            self.warnings.append(f"while at {_split(stack)[0] or '<root>'}: trip count unknown, body counted once")
            trips = 1
        carry = eqn.invars[cnc + bnc:]
        ip = set()
        if params:
            ip = {iv for iv, v in zip(body.invars, list(eqn.invars[cnc:cnc + bnc]) + list(carry)) if isinstance(v, jcore.Var) and v in params}
        self.walk(body, stack, count * trips, ip, out)

    def _cond(self, eqn, stack, count, params, out):
        best, best_flops = [], -1
        ops = eqn.invars[1:]
        for br in eqn.params["branches"]:
            j = _inner(br)
            ip = {iv for iv, v in zip(j.invars, ops) if isinstance(v, jcore.Var) and v in params} if params else set()
            tmp: list[EqnCost] = []
            self.walk(j, stack, count, ip, tmp)
            f = sum(e.flops_xla * e.count for e in tmp)
            if f > best_flops:
                best, best_flops = tmp, f
        self.warnings.append(f"cond at {_split(stack)[0] or '<root>'}: "
                             f"{len(eqn.params['branches'])} branches, the costliest counted")
        out.extend(best)


def _static_trip_count(eqn, cond, cnc, bnc):
    """Trip count of ``fori_loop``-shaped whiles: carry (i, upper, ...) with literal bounds."""
    if len(cond.eqns) != 1 or cond.eqns[0].primitive.name != "lt":
        return None
    a, b = cond.eqns[0].invars
    carry_in = cond.invars[cnc:]
    init = eqn.invars[cnc + bnc:]

    def value(v):
        if isinstance(v, jcore.Literal):
            return int(v.val)
        if v in carry_in:
            x = init[carry_in.index(v)]
            if isinstance(x, jcore.Literal):
                return int(x.val)
        return None

    lo, hi = value(a), value(b)
    if lo is None or hi is None:
        return None
    return max(0, hi - lo)


def analyze_jaxpr(closed_jaxpr, *, param_invars=frozenset()) -> TheoryResult:
    """Theoretical cost of every equation of ``closed_jaxpr`` (``jax.make_jaxpr(fn)(*args)``).

    ``param_invars``: indices into the flat invars that hold model parameters; operands derived
    from them through cheap ops (convert/reshape/transpose/broadcast) count as ``params_read``.
    """
    jaxpr = _inner(closed_jaxpr)
    params = {jaxpr.invars[i] for i in param_invars}
    w = _Walker()
    out: list[EqnCost] = []
    w.walk(jaxpr, "", 1, params, out)
    return TheoryResult(out, TheoryTotals.of(out), w.warnings, w.unknown)
