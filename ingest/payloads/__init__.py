"""Payload formats, one module each. ``json_v1`` is the v1 JSON contract."""
