"""The ports every cloud family watches in firewall rules, defined once.

Security groups of AWS, OpenStack and Outscale are judged against the same lists, so a
rule "no administration port open to the Internet" means the same ports whatever the
cloud. CIS AWS Foundations 5.2-5.3 name SSH and RDP; the watched list adds the file,
mail, database, cache, container and remote-desktop ports that scanners hunt for.
"""

from __future__ import annotations

ADMIN_PORTS: tuple[int, ...] = (22, 3389)
"""SSH and RDP (TCP or UDP): the administration ports."""
WATCHED_PORTS: tuple[int, ...] = (
    20,
    21,
    22,
    23,
    25,
    110,
    135,
    139,
    143,
    445,
    1433,
    1521,
    2049,
    2375,
    3306,
    3389,
    5432,
    5601,
    5900,
    6379,
    8080,
    9200,
    11211,
    27017,
)
DATA_PORTS: tuple[int, ...] = tuple(p for p in WATCHED_PORTS if p not in ADMIN_PORTS)
"""Watched ports other than SSH and RDP, which rules of their own judge."""
WORLD = frozenset({"0.0.0.0/0", "::/0"})
"""The sources that mean the whole Internet."""
