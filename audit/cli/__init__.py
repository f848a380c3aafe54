"""The command line: click commands, the terminal views and the scan's progress display.

Thin commands over the library (``audit.planning``, ``audit.engine``, ``audit.store``,
``reports``): typed errors become one line and an exit code only here
(:func:`audit.cli.app.main`). ``rempart --help`` must stay fast, so every command imports
what it needs inside itself.

- :mod:`.app` — the ``rempart`` group and its core commands (scan, report, findings, diff,
  accept, policy, checks), and ``main``;
- :mod:`.governance`, :mod:`.demo`, :mod:`.scale` — the ``frameworks``, ``demo`` and
  ``db`` command groups, registered lazily;
- :mod:`.progress` — the progress bar and the summary table of ``scan``;
- :mod:`.views` — tables and texts for the terminal (every cell made printable).
"""

from audit.cli.app import cli, main

__all__ = ["cli", "main"]
