"""XLA's own numbers, normalised: ``cost_analysis()`` and ``memory_analysis()``."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class CostTotals:
    """Module totals exactly as XLA's ``cost_analysis()`` reported them.

    ``available`` is False when the backend returned nothing (some GPU/TPU
    plugins return None); the figures are then None, never a silent zero.
    A key XLA omits (it drops zero-valued ``transcendentals``) reads as 0.
    """

    flops: float | None
    transcendentals: float | None
    bytes_accessed: float | None
    available: bool = True
    raw: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def from_xla(cls, result: Any) -> CostTotals:
        """Accept a dict, a list of one dict (jax < 0.4.38), or None."""
        if isinstance(result, (list, tuple)):
            result = result[0] if result else None
        if not result:
            return cls(None, None, None, available=False)
        raw = {k: float(v) for k, v in dict(result).items()}
        return cls(raw.get("flops", 0.0), raw.get("transcendentals", 0.0),
                   raw.get("bytes accessed", 0.0), True, raw)


@dataclasses.dataclass(frozen=True)
class MemoryStats:
    """``Compiled.memory_analysis()``: bytes of arguments, outputs, temporaries,
    aliased buffers and generated code; ``peak_bytes`` where the backend reports it."""

    argument_bytes: int | None = None
    output_bytes: int | None = None
    temp_bytes: int | None = None
    alias_bytes: int | None = None
    generated_code_bytes: int | None = None
    host_temp_bytes: int | None = None
    peak_bytes: int | None = None
    available: bool = False

    @property
    def total_bytes(self) -> int | None:
        """Arguments + outputs + temporaries − aliased: the live footprint of one call."""
        parts = (self.argument_bytes, self.output_bytes, self.temp_bytes)
        if any(p is None for p in parts):
            return None
        return sum(parts) - (self.alias_bytes or 0)

    @classmethod
    def from_xla(cls, stats: Any) -> MemoryStats:
        if stats is None:
            return cls()

        def get(*names):
            for n in names:
                v = getattr(stats, n, None)
                if v is not None:
                    return int(v)
            return None

        return cls(get("argument_size_in_bytes"), get("output_size_in_bytes"),
                   get("temp_size_in_bytes"), get("alias_size_in_bytes"),
                   get("generated_code_size_in_bytes"), get("host_temp_size_in_bytes"),
                   get("peak_memory_in_bytes"), True)
