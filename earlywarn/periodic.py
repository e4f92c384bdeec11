"""Running one step periodically on the event loop, for as long as the process serves.

The embedded runner and the alerter both escalate and feed storage this way: a defect in one
run of a step is logged and the next run goes ahead, so escalation does not end for every
alarm because one failed.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(
    period_s: float,
    step: Callable[[], Awaitable[object] | object],
    what: str,
    *,
    wait_first: bool = False,
) -> None:
    """Run ``step`` (a plain or an async function) every ``period_s`` until cancelled, first
    at once or, with ``wait_first``, after one period. A defect in one run is logged as an
    "internal error while ``what``" and the next run goes ahead."""
    if wait_first:
        await asyncio.sleep(period_s)
    while True:
        try:
            result = step()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("internal error while %s", what)
        await asyncio.sleep(period_s)
