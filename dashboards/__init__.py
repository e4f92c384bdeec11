"""Grafana dashboards built from the registry, their provisioning files, and the push to
Grafana's HTTP API.

The registry is the single source: every sensor gets its panel with its own set-points as
threshold lines, every enterprise its folder, and every uid derives from registry ids, so
building twice gives the same files and pushing twice overwrites instead of duplicating.
Queries are InfluxQL over the schema of :mod:`storage.schema` (see :mod:`dashboards.queries`).
"""
