"""Tables to bytes, knowing nothing of the config file: the family declarations (``families``),
the catalogue of families ``metrics:`` can switch (``selection``), the text 0.0.4 / OpenMetrics
writer (``text``), render on change into cached compressed segments (``render``), the gzip
member made of them (``gzipstream``) and the process collectors (``process``)."""
