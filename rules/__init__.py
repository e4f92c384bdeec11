"""Pure alarm rules: given a sensor's rule state and new readings, return new state and events.

Nothing here does I/O or imports the other earlywarn packages, so the same code serves the
embedded runner, the distributed runner and ``backtest``.
"""
