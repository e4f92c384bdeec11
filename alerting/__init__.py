"""Alerting: what happens to an alarm event once a rule has raised it.

This first cut prints and logs every event, keeps the set of active alarms per sensor and
encodes the retained alarm state that sirens and PLCs subscribe to. Routing, escalation and
acknowledgement build on it. Imports nothing of earlywarn but its model.
"""
