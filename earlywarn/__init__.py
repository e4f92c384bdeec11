"""earlywarn: IoT monitoring and early warning, from MQTT readings to acknowledged alarms.

This package holds the domain model, the registry, settings, the runners and the CLI; it wires
``ingest``, ``rules``, ``alerting`` and ``simulators`` together.
"""

__version__ = "0.1.0"
