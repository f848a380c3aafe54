"""Run a seeded lab in its own process (moto keeps one state per process).

Prints the lab URL on the first line, then obeys ``fix`` and ``stop`` lines on stdin.
"""

from __future__ import annotations

import sys

from checks.aws.lab import Lab


def main() -> None:
    with Lab() as lab:
        lab.seed()
        print(lab.url, flush=True)
        for line in sys.stdin:
            if line.strip() == "fix":
                lab.fix()
                print("fixed", flush=True)
            elif line.strip() == "stop":
                break


if __name__ == "__main__":
    main()
