"""Built-in policy packs (``*.yaml``) and framework catalogues (``frameworks/``)."""

from pathlib import Path

BUILTIN_DIR = Path(__file__).parent
