"""Built-in YAML profiles: wireless links (``links/``), device power models (``devices/``), cloud servers
(``servers/``). Measured per-segment profiles are written by profiling jobs under
``./device_profiles/measured/`` in the working directory, not here."""
