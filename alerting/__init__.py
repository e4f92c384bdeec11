"""Alerting: what happens to an alarm event once a rule has raised it.

Every event is printed (console sink), kept as the sensor's retained alarm state for sirens
and PLCs, and handed to the alert service (:mod:`alerting.service`): recorded in the durable
store with its ISA-18.2 lifecycle and audit log, routed along the responsibility chain, and
escalated by message, SMS and phone call until someone acknowledges. Imports nothing of
earlywarn but its model.
"""
