"""Run inside ``unshare -m`` (a private mount namespace): scans and reports written to a
2 MiB tmpfs filled up to a few KiB, and to a read-only tmpfs.

Prints one JSON object: for each case the exit code, stderr's last line, the files left
in the directory, and what the store holds afterwards (integrity check, scan statuses).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from checks.tls import lab

REPO = Path(__file__).resolve().parents[2]


def mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def fill(directory: Path, leave_kib: int) -> None:
    free = shutil.disk_usage(directory).free // 1024
    with (directory / "filler").open("wb") as out:
        for _ in range(max(0, free - leave_kib)):
            out.write(b"\0" * 1024)


def rempart(*args: str) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-m", "audit", *args], capture_output=True, text=True, cwd=REPO,
        check=False,
    )  # fmt: skip
    lines = run.stderr.strip().splitlines()
    return {"code": run.returncode, "err": lines[-1] if lines else "", "stderr": run.stderr}


def store_state(db: Path) -> dict[str, Any]:
    conn = sqlite3.connect(db)
    try:
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
            "scans": [list(r) for r in conn.execute("SELECT id, status FROM scans")],
            "per_resource": sorted(
                {n for (n,) in conn.execute(
                    "SELECT COUNT(*) FROM findings_full GROUP BY scan_id, resource_key")}
            ),
        }  # fmt: skip
    finally:
        conn.close()


def main() -> None:
    work = Path(sys.argv[1])
    full, readonly, ok = work / "full", work / "ro", work / "ok"
    mount_tmpfs(full, "size=2m")
    mount_tmpfs(readonly, "ro,size=1m")
    ok.mkdir()
    pki = lab.Pki(work)
    context = lab.server_context(pki.issue(["localhost"]))
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(lab.PythonTlsServer(context)) for _ in range(10)]
        targets = [f"tls://127.0.0.1:{s.port}?http_port=0" for s in servers]
        scan = ["scan", *targets, "--timeout", "5", "--quiet", "--ca-file", pki.ca_file]
        results["first"] = rempart(*scan, "--db", str(full / "r.db"))
        results["elsewhere"] = rempart(*scan, "--db", str(ok / "r.db"))
        fill(full, leave_kib=100)
        results["full_store"] = rempart(*scan, "--db", str(full / "r.db"), "-o",
                                        str(full / "r.json"))  # fmt: skip
        results["full_store"]["files"] = sorted(p.name for p in full.iterdir())
        (full / "filler").unlink()
        fill(full, leave_kib=8)
        results["full_report"] = rempart("report", "--db", str(ok / "r.db"), "-o",
                                         str(full / "r.html"))  # fmt: skip
        results["full_report"]["files"] = sorted(p.name for p in full.iterdir())
        (full / "filler").unlink()
        results["after"] = rempart(*scan, "--db", str(full / "r.db"))
        results["after"]["store"] = store_state(full / "r.db")
        results["readonly_store"] = rempart(*scan, "--db", str(readonly / "r.db"))
        results["readonly_report"] = rempart(*scan, "--db", str(ok / "r.db"), "-o",
                                             str(readonly / "r.json"))  # fmt: skip
        results["readonly_report"]["files"] = sorted(p.name for p in readonly.iterdir())
        results.update(read_only_store(work / "frozen", ok / "r.db", ok))
    print(json.dumps(results))


def read_only_store(frozen: Path, source: Path, out: Path) -> dict[str, Any]:
    """Commands that only read still serve a store on a read-only file system."""
    mount_tmpfs(frozen, "size=8m")
    shutil.copy(source, frozen / "r.db")
    subprocess.run(["mount", "-o", "remount,ro", str(frozen)], check=True)
    return {
        "ro_findings": rempart("findings", "--all", "--json", "--db", str(frozen / "r.db")),
        "ro_report": rempart("report", "--db", str(frozen / "r.db"), "-o",
                             str(out / "from-frozen.json")),
    }  # fmt: skip


if __name__ == "__main__":
    main()
