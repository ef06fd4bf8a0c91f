"""From the DMS client to the held tables: one poller per endpoint (``poller``), the quality gate
(``gate``), the store of last good tables, health and rendered exposition (``store``), and the log
lines of polling-state changes (``transitions``)."""
