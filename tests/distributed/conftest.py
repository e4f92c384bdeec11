"""Fixtures the distributed tests share: the alerter's (defined with its tests) for the
end-to-end test of the whole path."""

from tests.distributed.test_alerter import start_alerter

__all__ = ["start_alerter"]
