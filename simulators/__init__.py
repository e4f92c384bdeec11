"""Simulated sensors and scenarios that publish exactly what real devices publish.

Deterministic from a seed and driven by the time they are given, never by the wall clock.
Knows nothing about rules or the registry's Python types: callers pass plain descriptions.
"""
