"""The wheel ships everything a user needs: policies, catalogues, templates, translations.

Builds the wheel, installs it (without dependencies) into a fresh virtual environment that
borrows the development environment's dependencies through a ``.pth`` file, and runs the
installed ``rempart`` from another directory, so nothing can come from the source tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(work / "dist"),
            str(ROOT),
        ],
        check=True,
        cwd=work,
    )
    (wheel,) = (work / "dist").glob("rempart-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dev-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(site),
            str(wheel),
        ],
        check=True,
    )
    return venv


def run(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "REMPART_PLUGINS")}
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "audit", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_installed_package_comes_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    code = "import audit, policies; print(audit.__file__); print(policies.BUILTIN_DIR)"
    out = subprocess.run(
        [str(installed / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in out and str(installed) in out


def test_policy_list_and_frameworks_work_from_another_directory(
    installed: Path, tmp_path: Path
) -> None:
    listed = run(installed, tmp_path, "policy", "list")
    assert listed.returncode == 0, listed.stderr
    assert "anssi-tls" in listed.stdout and "exposure-baseline" in listed.stdout
    frameworks = run(installed, tmp_path, "frameworks", "list")
    assert frameworks.returncode == 0 and "nis2" in frameworks.stdout
    version = run(installed, tmp_path, "--version")
    assert "0.1.0" in version.stdout


def test_installed_reports_render_in_both_languages(installed: Path, tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from audit.models import ScanSummary\n"
        "from audit.reporting import ReportData, RenderOptions\n"
        "from audit.registry import load_renderers\n"
        "data = ReportData(ScanSummary(1, '2026-01-01T00:00:00+00:00', None, 'complete', (),"
        " {}), (), ())\n"
        "html = load_renderers()['html'].render\n"
        "print(json.dumps([html(data, RenderOptions(lang=l)).decode()[:4000] for l in"
        " ('fr', 'en')]))\n"
    )
    out = subprocess.run(
        [str(installed / "bin" / "python"), "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    french, english = json.loads(out)
    assert 'lang="fr"' in french and 'lang="en"' in english


def test_the_wheel_carries_no_test_code(installed: Path) -> None:
    """The fake families and the test helpers stay in the source tree; the lab base ships,
    since ``rempart demo`` runs on it."""
    (wheel,) = (installed.parent / "dist").glob("rempart-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    test_only = [
        name
        for name in names
        if name.startswith(("tests/", "bench/")) or Path(name).name in ("fakes.py", "conftest.py")
    ]
    assert test_only == []
    assert "audit/labkit/servers.py" in names
