"""The HTTP API served by ``earlywarn run`` and ``demo``: registry, onboarding, alarms,
health and Prometheus metrics, behind bearer tokens with roles (docs/api.md)."""
