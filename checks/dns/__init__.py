"""The ``dns`` check family (being built: the shared client lives in :mod:`checks.dns.client`)."""
