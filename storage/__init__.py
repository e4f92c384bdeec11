"""Storage: every reading, alarm transition and notification as InfluxDB points, never lost.

Lines are encoded once (:mod:`storage.lineproto`, :mod:`storage.schema`), appended to a
durable SQLite spool (:mod:`storage.spool`) and sent from there in order by the drainer
(:mod:`storage.drain`) through a writer (:mod:`storage.writer`); a line leaves the spool only
once InfluxDB has accepted it, or refused it for good (then it is kept aside with the reason).
Imports nothing of earlywarn but its model.
"""
