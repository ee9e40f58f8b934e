"""Transforms of a model's parameters (not of its cost): BatchNorm folding."""
