"""The example registry, shipped inside the package as ``earlywarn.examples`` for the demo."""
