"""Rempart: security posture auditing for public bodies.

The engine lives here; check families live in :mod:`checks`, policy packs in
:mod:`policies` and renderers in :mod:`reports`. Importing this package does no I/O.
"""

__version__ = "0.1.0"
