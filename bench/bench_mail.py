# ruff: noqa: E501  (the domain kinds and the comparison read best one per line)
"""Time the mail family (and the dns family, when registered) against checkdmarc on the
same domains and the same resolver, and compare their SPF and DMARC facts.

    .venv/bin/python bench/bench_mail.py [--domains 1000] [--runs 1] [--checkdmarc PATH]
                                         [--concurrency 32] [--rate-limit N]

Builds N mail domains of fifteen kinds (good, external reports authorised or not, softfail,
too many lookups through an include chain, void lookups, redirect, two SPF records, none,
null MX, ?all, a syntax error, +all, two DMARC records, an include without SPF), one zone
each, plus a provider zone and a report-receiving zone, served by NSD on 127.0.9.53 port
53 with an unsigned root zone (so every other name is NXDOMAIN, never a query elsewhere):
checkdmarc's CLI takes resolvers as addresses on port 53 only, so the bench needs root.

Then runs, each as one whole process measured with wait4 (wall time, CPU, peak RSS):

* rempart-mail: ``rempart scan`` over an inventory of the ``mail://`` targets with
  ``mail: {resolvers: [127.0.9.53]}``, ``-p mail-auth``, a store and a JSON report;
* rempart: the same over the ``mail://`` and ``dns://`` targets with ``dns: {resolvers:
  [...]}`` (only when the dns family is registered: that block belongs to it);
* rempart-mail-processes, rempart-processes: the same two scans with ``--executor
  processes`` (one worker process per core; peak RSS is the scanning process's only);
* family:  the mail family's collection alone, started on the probe loop at most
  ``--concurrency`` at a time as the engine does (no engine, store, report);
* checkdmarc: ``checkdmarc -n 127.0.9.53 -t 2 -o out.json DOMAIN...`` (no MX TLS test,
  its default; Rempart's MX hosts are outside the scope here, so neither probes them).

With ``--rate-limit N``, the family runs once more against NSD dropping answers in
silence past N a second per /24, and the bench counts the domains left with a fact
unknown and the facts that differ from the unlimited run (there must be none).

It compares, domain by domain, what each says of SPF (record, valid, all, lookups, void
lookups) and DMARC (record, valid, p, sp, pct, rua). checkdmarc is a bench-only tool,
installed apart: ``python3 -m venv .venv-bench && .venv-bench/bin/pip install checkdmarc``.
Nothing is sent beyond loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import benchkit

HERE = Path(__file__).resolve().parent
ADDRESS = "127.0.9.53"
KINDS = 15
QUALIFIERS = {"pass": "+all", "fail": "-all", "softfail": "~all", "neutral": "?all"}


def txt(owner: str, text: str) -> str:
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)]
    return f"{owner} IN TXT " + " ".join(f'"{c}"' for c in chunks)


def domain_records(index: int, name: str) -> list[str]:
    """The records of one bench domain, by kind (``index % KINDS``)."""
    kind = index % KINDS
    mx = ["@ IN MX 10 localhost."]
    good_spf = txt("@", "v=spf1 mx include:_spf.provider.test -all")
    dmarc = txt("_dmarc", f"v=DMARC1; p=reject; rua=mailto:dmarc@{name}")
    table: dict[int, list[str]] = {
        0: [*mx, good_spf, dmarc],
        1: [*mx, good_spf, txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:agg@reports.test")],
        2: [*mx, good_spf, txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:agg@nobody.test")],
        3: [*mx, txt("@", "v=spf1 a mx ~all"), txt("_dmarc", "v=DMARC1; p=quarantine; sp=none; pct=50")],
        4: [*mx, txt("@", "v=spf1 mx include:c1.provider.test -all"), dmarc],
        5: [*mx, txt("@", "v=spf1 a:n1.nowhere.test a:n2.nowhere.test exists:n3.nowhere.test -all"), dmarc],
        6: [*mx, txt("@", "v=spf1 redirect=_spf.provider.test"), dmarc],
        7: [*mx, txt("@", "v=spf1 mx -all"), txt("@", "v=spf1 a -all"), dmarc],
        8: [*mx],
        9: ["@ IN MX 0 .", txt("@", "v=spf1 -all"), txt("_dmarc", "v=DMARC1; p=reject")],
        10: [*mx, txt("@", "v=spf1 mx ?all"), txt("_dmarc", f"v=DMARC1; p=none; ruf=mailto:f@{name}")],
        11: [*mx, txt("@", "v=spf1 ip4:999.1.1.1 -all"), dmarc],
        12: [*mx, txt("@", "v=spf1 +all"), dmarc],
        13: [*mx, good_spf, dmarc, txt("_dmarc", "v=DMARC1; p=none")],
        14: [*mx, txt("@", "v=spf1 include:gone.nowhere.test -all"), dmarc],
    }  # fmt: skip
    return table[kind]


def build_zones(count: int) -> tuple[list[Any], list[str]]:
    """Zones for NSD (root, provider, reports, one per domain) and the domain names."""
    from checks.dns.lab import Zone, zone_text

    ns = {"ns.bench.": ADDRESS}
    names = [f"d{i:04d}.test" for i in range(count)]
    provider = [txt("_spf", "v=spf1 ip4:192.0.2.0/24 ~all")]
    provider += [txt(f"c{n}", f"v=spf1 include:c{n + 1}.provider.test ~all") for n in range(1, 11)]
    provider += [txt("c11", "v=spf1 ip4:192.0.2.1 ~all")]
    reports = [
        txt(f"{n}._report._dmarc", "v=DMARC1") for i, n in enumerate(names) if i % KINDS == 1
    ]
    zones = [
        Zone(".", zone_text(".", ["ns.bench. IN A " + ADDRESS], ns=ns)),
        Zone("provider.test", zone_text("provider.test", provider, ns=ns)),
        Zone("reports.test", zone_text("reports.test", reports, ns=ns)),
    ]
    for index, name in enumerate(names):
        zones.append(Zone(name, zone_text(name, domain_records(index, name), ns=ns)))
    return zones, names


def quiet_nsd(zones: list[Any], rate_limit: int = 0) -> Any:
    """The lab's NSD, which runs without response rate limiting: a thousand domains whose
    MX is ``localhost`` ask the same TLSA question a thousand times, which RRL (on by
    default in Debian's NSD) answers with truncation or silence, as it should for a
    public server. ``rate_limit`` turns it on, dropping answers in silence past it."""
    from checks.dns.lab import NsdServer

    return NsdServer(zones, addresses=(ADDRESS,), port=53, rate_limit=rate_limit)


def measure(command: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """One process timed (:func:`benchkit.measure`); a gate's exit 3 counts as run."""
    return benchkit.measure(command, env, ok=(0, 1, 3))


FAMILY_ONLY = """
import sys
sys.path.insert(0, sys.argv[5])
from urllib.parse import urlsplit
import benchkit
from audit.plugins import CheckContext
from checks.mail import FAMILY
from audit.plugins import Scope
scope = Scope(networks=("127.0.0.2/32",))
ctx = CheckContext(timeout=30, scope=scope, options={"dns": {"resolvers": [sys.argv[2]]}})
uris = [f"mail://{d}" for d in open(sys.argv[1]).read().split()]
targets = [FAMILY.parse(urlsplit(u), u) for u in uris]
observations = benchkit.observe_on_loop(FAMILY, targets, ctx, int(sys.argv[4]))
out = {}
for o in observations:
    for r in o.resources:
        if r.type == "mail.domain":
            out[r.facts["domain"]] = {"facts": dict(r.facts), "unknown": {k: p.message for k, p in r.unknown.items()}}
from audit.jsontext import dumps_bytes
open(sys.argv[3], "wb").write(dumps_bytes(out))
"""


def ours(facts: dict[str, Any]) -> dict[str, Any]:
    """SPF and DMARC as Rempart states them, in the comparison's terms."""
    spf, dmarc = facts.get("spf") or {}, facts.get("dmarc") or {}
    valid = bool(spf.get("present")) and not spf.get("errors")
    dmarc_valid = bool(dmarc.get("present")) and not dmarc.get("errors")
    return {
        "spf.record": spf.get("record"),
        "spf.valid": valid,
        "spf.all": spf.get("all") if valid else None,
        "spf.lookups": spf.get("lookups") if valid else None,
        "spf.void_lookups": spf.get("void_lookups") if valid else None,
        "dmarc.record": dmarc.get("record"),
        "dmarc.valid": dmarc_valid,
        "dmarc.p": dmarc.get("policy") if dmarc_valid else None,
        "dmarc.sp": dmarc.get("subdomain_policy") if dmarc_valid else None,
        "dmarc.pct": dmarc.get("pct") if dmarc_valid and "pct=" in (dmarc.get("record") or "") else None,
        "dmarc.rua_authorized": dmarc.get("external_rua_authorized") if dmarc_valid else None,
        "dmarc.rua": sorted(u.split(":", 1)[-1].split("!")[0].lower() for u in dmarc.get("rua") or []),
    }  # fmt: skip


def theirs(result: dict[str, Any]) -> dict[str, Any]:
    """SPF and DMARC as checkdmarc states them, in the same terms."""
    spf, dmarc = result.get("spf") or {}, result.get("dmarc") or {}
    parsed = spf.get("parsed") or {}
    tags = dmarc.get("tags") or {}
    valid_spf = bool(spf.get("valid"))
    rua = (tags.get("rua") or {}).get("value") or []
    return {
        "spf.record": spf.get("record"),
        "spf.valid": valid_spf,
        "spf.all": QUALIFIERS.get(str(parsed.get("all"))) if valid_spf else None,
        "spf.lookups": spf.get("dns_lookups") if valid_spf else None,
        "spf.void_lookups": spf.get("void_dns_lookups") if valid_spf else None,
        "dmarc.record": dmarc.get("record"),
        "dmarc.valid": bool(dmarc.get("valid")),
        "dmarc.p": (tags.get("p") or {}).get("value") if dmarc.get("valid") else None,
        "dmarc.sp": (tags.get("sp") or {}).get("value") if dmarc.get("valid") else None,
        "dmarc.pct": _int((tags.get("pct") or {}).get("value")) if dmarc.get("valid") else None,
        "dmarc.rua_authorized": not any(
            "does not indicate that it accepts" in w for w in dmarc.get("warnings", [])
        )
        if dmarc.get("valid")
        else None,
        "dmarc.rua": sorted(str(u.get("address", "")).lower() for u in rua),
    }


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def compare(mine: dict[str, Any], checkdmarc: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Per fact: how many domains agree, and the first disagreements."""
    agree: Counter[str] = Counter()
    differ: dict[str, list[tuple[str, Any, Any]]] = {}
    for name in names:
        a = ours(mine[name]["facts"]) if name in mine else {}
        b = theirs(checkdmarc.get(name, {}))
        for key, value in b.items():
            mine_value = a.get(key)
            if mine_value == value:
                agree[key] += 1
            else:
                differ.setdefault(key, []).append((name, mine_value, value))
    return {"agree": dict(agree), "differ": differ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--checkdmarc", default=str(Path(".venv-bench/bin/checkdmarc")))
    parser.add_argument(
        "--rate-limit", type=int, default=0,
        help="then the family again against NSD dropping answers past N a second per /24",
    )  # fmt: skip
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit(
            "the bench serves DNS on port 53 (checkdmarc asks no other port): run as root"
        )
    from audit.registry import load_families

    work = Path(tempfile.mkdtemp(prefix="rempart-bench-mail-"))
    zones, names = build_zones(args.domains)
    (work / "domains.txt").write_text("\n".join(names) + "\n")
    with quiet_nsd(zones):
        print(
            f"{len(names)} domains on NSD {ADDRESS}:53, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
        )
        results = run_all(args, work, names, "dns" in load_families().by_name)
    if args.rate_limit:
        with quiet_nsd(zones, args.rate_limit):
            results["rate_limited"] = rate_limited(args, work)
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1, default=str)[:20000])


def run_all(
    args: argparse.Namespace, work: Path, names: list[str], with_dns: bool
) -> dict[str, Any]:
    python = sys.executable
    resolver = f"{ADDRESS}:53"
    runs: dict[str, list[dict[str, float]]] = {
        "family": [], "checkdmarc": [], "rempart-mail": [], "rempart": [],
        "rempart-mail-processes": [], "rempart-processes": [],
    }  # fmt: skip
    for _ in range(args.runs):
        family_out = work / "family.json"
        runs["family"].append(measure(
            [python, "-c", FAMILY_ONLY, str(work / "domains.txt"), resolver, str(family_out), str(args.concurrency), str(HERE)]
        ))  # fmt: skip
        cd_out = work / "checkdmarc.json"
        runs["checkdmarc"].append(measure(
            [args.checkdmarc, str(work / "domains.txt"), "-t", "2", "-n", ADDRESS, "-o", str(cd_out)]
        ))  # fmt: skip
        for suffix, executor in (("", []), ("-processes", ["--executor", "processes"])):
            mail_only = scan_command(work, names, resolver, args.concurrency, with_dns=False)
            runs[f"rempart-mail{suffix}"].append(measure(mail_only + executor))
            if with_dns:
                both = scan_command(work, names, resolver, args.concurrency)
                runs[f"rempart{suffix}"].append(measure(both + executor))
    mine = json.loads(family_out.read_text())
    checkdmarc = {item["domain"]: item for item in _load_list(cd_out)}
    agreement = compare(mine, checkdmarc, names)
    summary = {k: _median(v) for k, v in runs.items() if v}
    ratio = summary["checkdmarc"]["wall_s"] / summary["family"]["wall_s"]
    return {
        "runs": summary,
        "ratio_checkdmarc_over_family": round(ratio, 1),
        "ratio_checkdmarc_over_rempart_mail": round(summary["checkdmarc"]["wall_s"] / summary["rempart-mail"]["wall_s"], 1),
        "ratio_checkdmarc_over_rempart": round(summary["checkdmarc"]["wall_s"] / summary["rempart"]["wall_s"], 1)
        if "rempart" in summary else None,
        "ratio_checkdmarc_over_rempart_processes": round(summary["checkdmarc"]["wall_s"] / summary["rempart-processes"]["wall_s"], 1)
        if "rempart-processes" in summary else None,
        "unknown_facts": Counter(u for v in mine.values() for u in v["unknown"]),
        "unknown_examples": [v["unknown"] for v in mine.values() if v["unknown"]][:5],
        "agreement": {k: f"{v}/{len(names)}" for k, v in sorted(agreement["agree"].items())},
        "differences": {k: v[:5] for k, v in agreement["differ"].items()},
        "difference_counts": {k: len(v) for k, v in agreement["differ"].items()},
    }  # fmt: skip


def rate_limited(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The family again, against a server that drops answers in silence: how many domains
    end with a fact unknown, and how many facts it states differ from the run without the
    limit (none may: a lost answer must leave its fact unknown, never change it)."""
    out = work / "limited.json"
    figures = measure([
        sys.executable, "-c", FAMILY_ONLY, str(work / "domains.txt"), f"{ADDRESS}:53",
        str(out), str(args.concurrency), str(HERE),
    ])  # fmt: skip
    free = json.loads((work / "family.json").read_text())
    limited = json.loads(out.read_text())
    wrong = [
        (name, fact)
        for name, seen in limited.items()
        for fact, value in seen["facts"].items()
        if fact not in seen["unknown"] and free.get(name, {}).get("facts", {}).get(fact) != value
    ]
    return {
        "rate_limit": args.rate_limit,
        "run": figures,
        "domains": len(limited),
        "domains_with_unknown_facts": sum(1 for v in limited.values() if v["unknown"]),
        "unknown_examples": [v["unknown"] for v in limited.values() if v["unknown"]][:3],
        "facts_differing_from_the_unlimited_run": len(wrong),
        "differing_examples": wrong[:5],
    }


def scan_command(
    work: Path, names: list[str], resolver: str, concurrency: int, *, with_dns: bool = True
) -> list[str]:
    """``rempart scan`` over an inventory of every domain: mail://, and dns:// too."""
    import yaml

    targets = [f"mail://{n}" for n in names] + [f"dns://{n}" for n in names if with_dns]
    inventory: dict[str, Any] = {
        "scope": {"networks": ["127.0.0.2/32"], "domains": ["test"]},
        "systems": [{"name": "bench", "targets": targets}],
    }
    if with_dns:
        inventory["dns"] = {"resolvers": [resolver]}
    else:
        inventory["mail"] = {"resolvers": [resolver]}
    path = work / "inventory.yaml"
    path.write_text(yaml.safe_dump(inventory))
    db = work / "bench.db"
    db.unlink(missing_ok=True)
    return [
        sys.executable, "-m", "audit", "scan", "-i", str(path), "-p", "mail-auth",
        "--db", str(db), "-o", str(work / "rempart.json"), "--quiet",
        "--concurrency", str(concurrency),
    ]  # fmt: skip


def _load_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    return data if isinstance(data, list) else [data]


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    import statistics

    return {k: round(statistics.median(r[k] for r in runs), 2) for k in runs[0]}


if __name__ == "__main__":
    main()
