"""One hierarchy of typed errors; only the CLI turns them into a message and an exit code.

::

    RempartError                  exit 2 unless stated
    ├── InputError                bad input from a user: one line naming file, line, what
    │   ├── InventoryError        inventory file or its values
    │   │   └── InventoryErrors       every fault of one inventory, each with its own line
    │   ├── PolicyError           policy file: file, line and YAML path of the fault
    │   │   └── PolicyErrors      several faults in one file, each with its own line
    │   ├── TargetError           a target URI that does not parse or validate
    │   ├── ScopeError            a target outside the declared scope
    │   ├── OptionError           a command-line option that makes no sense
    │   └── AcceptanceError       a risk acceptance the rules refuse (expiry, owner, id)
    ├── DependencyError           a required program or extra is missing (nmap, WeasyPrint)
    ├── PluginError               two plugins claim one name, or a plugin does not load
    ├── StoreError                the SQLite store cannot be opened or written
    ├── ReportError               a report cannot be rendered or written
    └── ObservationError          raised inside a check; the engine turns it into an
                                  ``error`` finding with its reason (never reaches the CLI)
"""

from __future__ import annotations

from collections.abc import Sequence

from audit.models import Reason


class RempartError(Exception):
    """Base of every error Rempart raises on purpose."""

    exit_code = 2

    def lines(self) -> list[str]:
        """The message as the CLI prints it: one line per problem (several for the
        ``…Errors`` classes that gather every fault of a file)."""
        return [str(self)]


class InputError(RempartError):
    """Bad input: the message names the file, the line and what is wrong."""

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.source = source
        self.line = line
        self.detail = message
        where = ""
        if source:
            where = f"{source}:{line}: " if line else f"{source}: "
        super().__init__(f"{where}{message}")


class InventoryError(InputError):
    """The inventory file, or a value in it, is wrong."""


class _Several(InputError):
    """Every fault found in one file, so its author fixes them in one pass; each fault
    keeps its own line, and the CLI prints one line a fault."""

    def __init__(self, problems: Sequence[InputError]):
        self.problems = tuple(problems)
        first = self.problems[0]
        InputError.__init__(self, first.detail, source=first.source, line=first.line)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)

    def lines(self) -> list[str]:
        """One message a fault, as the CLI prints them."""
        return [str(problem) for problem in self.problems]


class InventoryErrors(_Several, InventoryError):
    """Every fault found in one inventory."""


class PolicyError(InputError):
    """A policy file does not validate; it is refused whole."""


class PolicyErrors(_Several, PolicyError):
    """Every fault found in one policy file."""


class TargetError(InputError):
    """A target URI does not parse or validate."""


class ScopeError(InputError):
    """A target lies outside the declared scope: nothing is sent to it."""


class OptionError(InputError):
    """A command-line option is wrong."""


class AcceptanceError(InputError):
    """A risk acceptance breaks a rule of the store (an expiry in the past or more than
    three years out, no owner or reason, an unknown id or fingerprint).

    ``field`` names what was wrong (``until``, ``owner``, ``reason``, ``id``,
    ``fingerprint``), so the command line can phrase it in its own option names.
    """

    def __init__(self, message: str, *, field: str):
        self.field = field
        super().__init__(message)


class DependencyError(RempartError):
    """A program or optional extra Rempart needs is not installed."""


class StoreError(RempartError):
    """The SQLite store cannot be opened, migrated or written."""


class ReportError(RempartError):
    """A report cannot be rendered or written."""


class PluginError(RempartError):
    """Two plugins claim the same name, or a plugin does not load."""


class ObservationError(RempartError):
    """A check could not observe something; carries a :class:`Reason`.

    Checks may raise it; the engine converts it into data (a :class:`Problem`).
    """

    def __init__(self, reason: Reason, message: str):
        self.reason = reason
        super().__init__(message)
