"""MQTT ingest: topics, payload parsing, validation against the registry, dead-letter.

Parsing happens on the event loop, never in paho's network thread; the thread only hands
immutable messages over (see :mod:`ingest.handoff`).
"""
