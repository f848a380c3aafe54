"""What every family's lab is built on: loopback servers, a PKI, lab processes, the demo.

The labs (``checks/<family>/lab.py``) start real servers on loopback for the tests, the
benchmarks and ``rempart demo``; this package holds the parts they share, so a family lab
only adds what is specific to its protocol:

- :mod:`~audit.labkit.servers`: :class:`ThreadedServer`, a TCP listener on a loopback
  address (accept loop in a thread, one daemon thread per connection, clean stop);
- :mod:`~audit.labkit.pki`: :class:`Pki`, a root CA and an intermediate issuing leaves
  (key identifiers on or off, CA keys of choice, EdDSA issuers, must-staple, hash);
- :mod:`~audit.labkit.process`: :class:`LabProcess`, a program started for a lab (say
  ``openssl s_server``), whose port is read from its output or found by polling;
- :mod:`~audit.labkit.demo`: what a family's ``demo`` hook receives and returns.

Nothing here is imported by a scan, and nothing imports ``cryptography`` before a
certificate is made.
"""

from __future__ import annotations

from audit.labkit.demo import DemoContext, DemoPart
from audit.labkit.pki import Issued, Pki, ec_key, key_pem, pem, rsa_key, self_signed
from audit.labkit.process import LabProcess
from audit.labkit.servers import LOOPBACK, HandlerServer, ThreadedServer, closed_port

__all__ = [
    "LOOPBACK",
    "DemoContext",
    "DemoPart",
    "HandlerServer",
    "Issued",
    "LabProcess",
    "Pki",
    "ThreadedServer",
    "closed_port",
    "ec_key",
    "key_pem",
    "pem",
    "rsa_key",
    "self_signed",
]
