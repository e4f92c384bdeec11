"""Columnar rule evaluation: many sensors' rules of one kind at once, state in numpy arrays.

See :mod:`rules.fleet` for the engine that drives the lanes and :mod:`rules.lanes.columns` for
the segmented building blocks every lane shares.
"""
