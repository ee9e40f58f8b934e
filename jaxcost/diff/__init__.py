"""Differences, explained: theory vs compiler (``explain``), fused vs unfused (``fusion``),
program A vs program B (``compare``)."""
