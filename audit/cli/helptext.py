"""Texts shared by the commands' ``--help``: examples, and the options several commands
repeat. Every command shows an example and every option says what it does
(``tests/spine/test_cli_help.py`` walks the commands to keep it so)."""

from __future__ import annotations


def example(*lines: str) -> str:
    """A command's epilog: examples to copy, kept as written (``\\b`` stops click from
    rewrapping them)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


FORMAT_HELP = (
    "Report format (html, pdf, md, json, csv, sarif, junit, ocsf) when a path has no "
    "extension, and for -o -."
)
LANG_HELP = "Language of the report (French by default; the languages the reports ship)."
