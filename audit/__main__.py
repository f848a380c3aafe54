"""``python -m audit`` runs the same command line as ``rempart``."""

from audit.cli import main

main()
