"""What a Dask cluster can do to the scanning host, and what it no longer can.

Each attack of the security review is reproduced against real schedulers and workers on
loopback: a worker that answers with a pickle, a worker that forges observations, plain
TCP to a remote host, an inventory that picks the cluster, TLS with mutual certificates.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scale_helpers import distributed, plan_for, sim_targets, worker_pythonpath

from audit.cli import app as cli
from audit.engine import run_scan
from audit.errors import InventoryError, OptionError
from audit.inventory import load_inventory
from audit.registry import Families
from audit.scale.executors import ExecutorTrust, check_trust, open_executor, parse_executor_url
from audit.store import Store

# --- a rogue worker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A scheduler on loopback with one worker process preloaded with ``rogue_worker``."""
    control = tmp_path_factory.mktemp("rogue") / "control.json"
    os.environ["REMPART_ROGUE_CONTROL"] = str(control)
    try:
        with (
            worker_pythonpath(),
            distributed().LocalCluster(
                n_workers=1,
                threads_per_worker=2,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=50,
                preload=["rogue_worker"],
            ) as cluster,
        ):
            yield "dask://" + cluster.scheduler_address.removeprefix("tcp://"), control
    finally:
        os.environ.pop("REMPART_ROGUE_CONTROL", None)


def behave(control: Path, marker: Path, probe: str = "honest", job: str = "honest") -> None:
    settings = {"probe": probe, "job": job, "marker": str(marker), "pid": os.getpid()}
    control.write_text(json.dumps({**settings, "others": ["sim://t0", "sim://t1"]}))


@pytest.mark.parametrize("probe", ["pickle", "raise", "metaclass"])
def test_rogue_probe_answer_runs_no_code_here(
    tmp_path: Path, rogue: tuple[str, Path], probe: str
) -> None:
    # Given a worker that answers the version probe with a malicious pickle
    url, control = rogue
    marker = tmp_path / "marker"
    behave(control, marker, probe=probe)
    # When rempart connects, the worker is refused, in one line
    with (
        pytest.raises(OptionError, match="cannot run rempart checks") as refused,
        open_executor(url + "?timeout=5"),
    ):
        pass
    assert "\n" not in str(refused.value)
    # And nothing ran in the scanning process
    assert not marker.exists()


@pytest.mark.parametrize("job", ["pickle", "other_target", "other_key", "bad_type"])
def test_forged_results_become_errors_and_fail_the_gate(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    rogue: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    job: str,
) -> None:
    # Given a worker that forges every observation into passing facts
    url, control = rogue
    marker = tmp_path / "marker"
    behave(control, marker, job=job)
    monkeypatch.setattr(cli, "_families", lambda: families)
    db = tmp_path / "r.db"
    # When a gated scan runs on it
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://t0", "sim://t1", "-p", str(policy_file), "--db", str(db),
                  "-q", "--executor", url, "--fail-on", "low"])  # fmt: skip
    # Then every finding is an error saying the result was refused, and the gate fails
    assert exited.value.code == 3, capsys.readouterr().err
    findings = Store(db).findings(Store(db).latest_scan_id())
    assert findings and {f.status.value for f in findings} == {"error"}
    assert all(f.reason == "bug" for f in findings)
    assert all("refused" in f.message for f in findings)
    assert {f.target for f in findings} == {"sim://t0", "sim://t1"}
    assert not marker.exists()


def test_honest_worker_of_the_rogue_cluster_scans(
    tmp_path: Path, policy_file: Path, families: Families, rogue: tuple[str, Path]
) -> None:
    # Given the same worker behaving: the refusals above are not refusing everything
    url, control = rogue
    behave(control, tmp_path / "marker")
    store = Store(tmp_path / "r.db")
    with open_executor(url) as executor:
        summary = run_scan(
            plan_for(policy_file, sim_targets(4)), families, store, executor=executor
        )
    assert {f.status.value for f in store.findings(summary.id)} <= {"pass", "fail", "skip"}


# --- plain TCP, inventories ---------------------------------------------------------------


def test_plain_tcp_to_a_remote_scheduler_is_refused_before_any_packet(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a scheduler URL off loopback (TEST-NET-3: nothing answers there)
    monkeypatch.setattr(cli, "_families", lambda: families)
    started = time.monotonic()
    # When a scan is pointed at it without --executor-insecure
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://a", "-p", str(policy_file), "--db", str(tmp_path / "r.db"),
                  "-q", "--executor", "dask://203.0.113.7:8786"])  # fmt: skip
    # Then exit 2 at once, one line, and no store was even opened
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "plain TCP to 203.0.113.7 is neither encrypted nor authenticated" in err
    assert err.count("\n") == 1
    assert time.monotonic() - started < 2
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize(
    ("url", "trust", "message"),
    [
        ("dask://scheduler.example.gouv.fr:8786", ExecutorTrust(), "plain TCP"),
        ("dask://[2001:db8::1]:8786", ExecutorTrust(), "plain TCP"),
        ("dask://127.0.0.1:8786", ExecutorTrust(ca_file="ca.pem"), "need dask\\+tls://"),
        ("dask+tls://10.1.2.3:8786", ExecutorTrust(), "needs --executor-ca, --executor-cert"),
        (
            "dask+tls://10.1.2.3:8786",
            ExecutorTrust("/nonexistent/ca.pem", "/nonexistent/c.pem", "/nonexistent/k.pem"),
            "--executor-ca '/nonexistent/ca.pem' is not a file",
        ),
    ],
)
def test_executor_trust_refusals(url: str, trust: ExecutorTrust, message: str) -> None:
    with pytest.raises(OptionError, match=message):
        check_trust(url, parse_executor_url(url), trust)


@pytest.mark.parametrize(
    "url", ["dask://127.0.0.1:8786", "dask://[::1]:8786", "dask://localhost:8786"]
)
def test_plain_tcp_on_loopback_is_allowed(url: str) -> None:
    check_trust(url, parse_executor_url(url), ExecutorTrust())


def test_executor_insecure_allows_plain_tcp_to_a_remote_host() -> None:
    url = "dask://10.1.2.3:8786"
    check_trust(url, parse_executor_url(url), ExecutorTrust(insecure=True))


def test_inventory_cannot_choose_the_executor(tmp_path: Path, families: Families) -> None:
    # Given an inventory naming a cluster (a host outside any scope)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "systems:\n  - name: Lab\n    targets: [sim://a]\nexecutor: dask://198.51.100.9:8786\n"
    )
    # Then loading it is refused, naming the file and the line
    with pytest.raises(InventoryError, match=r"inventory\.yaml:4: executor: an inventory cannot"):
        load_inventory(inventory, families)


# --- encryption required, TLS ---------------------------------------------------------------


def test_require_encryption_with_plain_tcp_is_a_clean_exit_2(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    dask_inprocess: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given Dask configured to require encryption, and a plain dask:// executor
    import dask

    monkeypatch.setattr(cli, "_families", lambda: families)
    with (
        dask.config.set({"distributed.comm.require-encryption": True}),
        pytest.raises(SystemExit) as exited,
    ):
        cli.main(["scan", "sim://a", "-p", str(policy_file), "--db",
                  str(tmp_path / "r.db"), "-q", "--executor", dask_inprocess])  # fmt: skip
    # Then one line and exit 2, not a traceback
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith("rempart: error: executor dask://") and err.count("\n") == 1


def _certificates(directory: Path) -> dict[str, Path]:
    """A CA, a certificate for the cluster, one for the client, one from another CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(name: str, issuer: Any, issuer_key: Any, is_ca: bool) -> tuple[Any, Any]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer.subject if issuer is not None else subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .sign(issuer_key if issuer_key is not None else key, hashes.SHA256())
        )
        return cert, key

    def write(name: str, cert: Any, key: Any) -> None:
        pem = serialization.Encoding.PEM
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(pem))
        (directory / f"{name}.key").write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )

    ca, ca_key = issue("Rempart test CA", None, None, True)
    other, other_key = issue("Another CA", None, None, True)
    write("ca", ca, ca_key)
    for name, (issuer, issuer_key) in {
        "cluster": (ca, ca_key),
        "client": (ca, ca_key),
        "stranger": (other, other_key),
    }.items():
        write(name, *issue(name, issuer, issuer_key, False))
    return {p.name: p for p in directory.iterdir()}


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Path]]]:
    """A scheduler and worker threads that speak only mutual TLS, on loopback."""
    files = _certificates(tmp_path_factory.mktemp("pki"))
    security = distributed().Security(
        tls_ca_file=str(files["ca.pem"]),
        tls_scheduler_cert=str(files["cluster.pem"]),
        tls_scheduler_key=str(files["cluster.key"]),
        tls_worker_cert=str(files["cluster.pem"]),
        tls_worker_key=str(files["cluster.key"]),
        tls_client_cert=str(files["cluster.pem"]),
        tls_client_key=str(files["cluster.key"]),
        require_encryption=True,
    )
    with distributed().LocalCluster(
        n_workers=1,
        threads_per_worker=4,
        processes=False,
        protocol="tls",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        security=security,
    ) as cluster:
        yield "dask+tls://" + cluster.scheduler_address.removeprefix("tls://"), files


def test_tls_scheduler_end_to_end(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    tls_cluster: tuple[str, dict[str, Path]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a mutual-TLS scheduler and this host's certificate from the cluster's CA
    url, files = tls_cluster
    monkeypatch.setattr(cli, "_families", lambda: families)
    db = tmp_path / "r.db"
    # When a scan runs there with the CA, certificate and key
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://a", "sim://b", "sim://down1", "-p", str(policy_file), "--db",
                  str(db), "-q", "--executor", url, "--executor-ca", str(files["ca.pem"]),
                  "--executor-cert", str(files["client.pem"]),
                  "--executor-key", str(files["client.key"])])  # fmt: skip
    # Then it completes with every target observed (down1 unreachable, as with threads)
    assert exited.value.code == 0, capsys.readouterr().err
    findings = Store(db).findings(Store(db).latest_scan_id())
    assert {f.target for f in findings} == {"sim://a", "sim://b", "sim://down1"}
    assert {f.reason for f in findings if f.status.value == "error"} == {"unreachable"}


@pytest.mark.parametrize(
    ("scheme", "options", "message"),
    [
        ("dask://", [], "executor dask://127.0.0.1"),
        ("dask+tls://", [], "a TLS scheduler needs --executor-ca"),
        ("dask+tls://", ["stranger"], "executor dask\\+tls://127.0.0.1"),
    ],
)
def test_clients_without_the_clusters_certificates_exit_2(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    tls_cluster: tuple[str, dict[str, Path]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    scheme: str,
    options: list[str],
    message: str,
) -> None:
    # Given the encryption-requiring scheduler, and a client with no or foreign certificates
    url, files = tls_cluster
    url = scheme + url.removeprefix("dask+tls://") + "?timeout=2"
    pki = [
        arg
        for name in options
        for arg in ("--executor-ca", str(files["ca.pem"]), "--executor-cert",
                    str(files[f"{name}.pem"]), "--executor-key", str(files[f"{name}.key"]))
    ]  # fmt: skip
    monkeypatch.setattr(cli, "_families", lambda: families)
    # When a scan is pointed at it
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://a", "-p", str(policy_file), "--db", str(tmp_path / "r.db"),
                  "-q", "--executor", url, *pki])  # fmt: skip
    # Then exit 2 and one line, before anything is scanned
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.count("\n") == 1
    assert err.startswith("rempart: error: ")
    assert re.search(message, err), err
