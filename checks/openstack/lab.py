"""A disposable OpenStack lab: the real Keystone, and the other services faked on loopback.

Keystone is installed from PyPI in its own virtual environment (``make keystone-venv``:
``.venv-keystone``), runs on SQLite behind werkzeug's WSGI server on 127.0.0.1, issues
the tokens and serves the service catalogue; Nova, Neutron, Cinder, Glance, Swift and
Octavia come from :mod:`checks.openstack.fake`, built from their api-ref samples.
:meth:`Lab.seed` plants a project with flaws next to clean counterparts (SSH open to the
world, an unencrypted volume, a public container and image, a password in a server's
metadata, a user without MFA, an application credential that never expires) and
:meth:`Lab.fix` remediates the main ones. Used by the tests, the benchmark and
``rempart demo``; nothing here is imported by a scan.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checks.openstack.fake import (
    SERVICES,
    CloudData,
    FakeServices,
    image,
    listener,
    security_group,
    server,
    volume,
)

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart, LabProcess

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "lab-admin-0b7e"  # noqa: S105 - loopback lab credential
AUDITOR_PASSWORD = "lab-auditor-5c1d"  # noqa: S105 - loopback lab credential
REGION, OTHER_REGION = "RegionOne", "RegionTwo"
PROJECT = "lab"
DEMO_SWITCH = "REMPART_DEMO_OPENSTACK"
"""``rempart demo`` shows the OpenStack project only when this variable is 1."""
_CATALOGUE_TYPES = {"block-storage": "volumev3"}
_CONF = """[DEFAULT]
use_stderr = false
[database]
connection = sqlite:///{dir}/keystone.db
[token]
provider = fernet
expiration = 7200
[fernet_tokens]
key_repository = {dir}/fernet
[fernet_receipts]
key_repository = {dir}/fernet
[credential]
key_repository = {dir}/credential
[cache]
enabled = true
backend = dogpile.cache.memory
[identity]
password_hash_rounds = 4
"""


def keystone_venv() -> Path:
    """Where ``make keystone-venv`` installs Keystone (``REMPART_KEYSTONE_VENV`` moves it)."""
    return Path(os.environ.get("REMPART_KEYSTONE_VENV", ROOT / ".venv-keystone"))


def keystone_installed() -> bool:
    return (keystone_venv() / "bin" / "keystone-manage").exists()


def _template() -> Path:
    """A migrated, bootstrapped Keystone directory, made once per venv and copied per lab."""
    venv = keystone_venv()
    template = venv / "rempart-lab-template"
    if (template / "ready").read_text() == _CONF if (template / "ready").exists() else False:
        return template
    shutil.rmtree(template, ignore_errors=True)
    template.mkdir(parents=True)
    (template / "fernet").mkdir()
    (template / "credential").mkdir()
    conf = template / "keystone.conf"
    conf.write_text(_CONF.format(dir=template))
    manage = [str(venv / "bin" / "keystone-manage"), "--config-file", str(conf)]
    steps = [
        ["db_sync"],
        ["fernet_setup", "--keystone-user", "root", "--keystone-group", "root"],
        ["credential_setup", "--keystone-user", "root", "--keystone-group", "root"],
        [
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-public-url",
            "http://127.0.0.1:5000/v3",
            "--bootstrap-region-id",
            REGION,
        ],
    ]
    user = os.environ.get("USER") or "root"
    for step in steps:
        command = manage + [user if s == "root" else s for s in step]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    (template / "ready").write_text(_CONF)
    return template


@dataclass
class Planted:
    """Ids of what :meth:`Lab.seed` created, for tests and the demo."""

    project_id: str = ""
    auditor_id: str = ""
    mfa_user: str = ""
    nomfa_user: str = ""
    app_cred_expiring: str = ""
    app_cred_forever: str = ""
    app_cred_secret: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Lab:
    """The real Keystone and the fake services, seeded for one project."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="rempart-openstack-"))
        self.keystone: LabProcess | None = None
        self.fake: FakeServices | None = None
        self.planted = Planted()
        self.auth_url = ""

    # --- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Lab:
        from audit.labkit import LabProcess

        state = self.directory / "keystone"
        shutil.copytree(_template(), state)
        (state / "keystone.conf").write_text(_CONF.format(dir=state))
        python = keystone_venv() / "bin" / "python"
        script = Path(__file__).with_name("keystone_serve.py")
        self.keystone = LabProcess(
            [str(python), str(script), str(state / "keystone.conf")],
            read_port=_read_port,
            start_timeout=60.0,
        ).__enter__()
        self.auth_url = f"http://127.0.0.1:{self.keystone.port}/v3"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fake is not None:
            self.fake.__exit__(*exc)
        if self.keystone is not None:
            self.keystone.__exit__(*exc)
        shutil.rmtree(self.directory, ignore_errors=True)

    # --- Keystone ------------------------------------------------------------------

    def admin(self, project: str = "admin") -> Any:
        """An openstacksdk connection as Keystone's bootstrap admin."""
        import openstack

        return openstack.connect(
            auth_url=self.auth_url,
            username="admin",
            password=ADMIN_PASSWORD,
            project_name=project,
            user_domain_id="default",
            project_domain_id="default",
            region_name=REGION,
            identity_endpoint_override=self.auth_url,
        )

    def seed(
        self,
        data: CloudData | Callable[[str], CloudData] | None = None,
        credentials: bool = True,
    ) -> None:
        """Users, project, roles, credentials and the catalogue; then the fake's data.

        ``credentials=False`` plants no application credential (the demo's lighter part).
        """
        conn = self.admin()
        identity = conn.identity
        self._fix_identity_endpoint(conn)
        project = identity.create_project(name=PROJECT, domain_id="default")
        self.planted.project_id = project.id
        roles = {r.name: r.id for r in identity.roles()}
        auditor = identity.create_user(
            name="auditor", password=AUDITOR_PASSWORD, domain_id="default"
        )
        self.planted.auditor_id = auditor.id
        identity.assign_project_role_to_user(project, auditor, roles["reader"])
        admin_user = identity.find_user("admin")
        identity.assign_project_role_to_user(project, admin_user, roles["admin"])
        mfa = identity.create_user(
            name="alice-mfa",
            password="lab-alice-7f3a",  # noqa: S106 - loopback lab credential
            domain_id="default",
            options={
                "multi_factor_auth_enabled": True,
                "multi_factor_auth_rules": [["password", "totp"]],
            },
        )
        nomfa = identity.create_user(
            name="bob-nomfa",
            password="lab-bob-2e9c",  # noqa: S106 - loopback lab credential
            domain_id="default",
        )
        self.planted.mfa_user, self.planted.nomfa_user = mfa.id, nomfa.id
        if credentials:
            self._app_credentials()
        chosen = data(project.id) if callable(data) else data
        self.fake = FakeServices(chosen or seeded_data(project.id)).__enter__()
        self._catalogue(conn)

    def _fix_identity_endpoint(self, conn: Any) -> None:
        """The template was bootstrapped before the port was known: point it here."""
        for endpoint in conn.identity.endpoints():
            conn.identity.update_endpoint(endpoint, url=self.auth_url)

    def _app_credentials(self) -> None:
        import openstack

        auditor: Any = openstack.connect(
            auth_url=self.auth_url,
            username="auditor",
            password=AUDITOR_PASSWORD,
            project_name=PROJECT,
            user_domain_id="default",
            project_domain_id="default",
            region_name=REGION,
            identity_endpoint_override=self.auth_url,
        )
        user = self.planted.auditor_id
        expiring = auditor.identity.create_application_credential(
            user=user, name="ci-expiring", expires_at="2099-01-01T00:00:00"
        )
        forever = auditor.identity.create_application_credential(
            user=user, name="ci-forever", unrestricted=True
        )
        self.planted.app_cred_expiring = expiring.id
        self.planted.app_cred_forever = forever.id
        self.planted.app_cred_secret = str(forever.secret)
        self.planted.extra["app_cred_forever_id"] = forever.id

    def _catalogue(self, conn: Any) -> None:
        """Every fake service in RegionOne; only compute and network in RegionTwo."""
        assert self.fake is not None
        identity = conn.identity
        identity.create_region(id=OTHER_REGION)
        for service in SERVICES:
            kind = _CATALOGUE_TYPES.get(service, service)
            entry = identity.create_service(type=kind, name=service)
            regions = [REGION] + ([OTHER_REGION] if service in ("compute", "network") else [])
            for region in regions:
                identity.create_endpoint(
                    service_id=entry.id,
                    interface="public",
                    url=self.fake.endpoint(service),
                    region_id=region,
                )

    # --- what a scan needs -----------------------------------------------------------

    def clouds_yaml(self) -> Path:
        """A clouds.yaml with the auditor (reader), the admin and an application credential."""
        import yaml

        base = {"auth_url": self.auth_url, "user_domain_id": "default"}
        clouds = {
            "lab": {
                "auth": {
                    **base,
                    "username": "auditor",
                    "password": AUDITOR_PASSWORD,
                    "project_name": PROJECT,
                    "project_domain_id": "default",
                },
                "region_name": REGION,
            },
            "lab-admin": {
                "auth": {
                    **base,
                    "username": "admin",
                    "password": ADMIN_PASSWORD,
                    "project_name": PROJECT,
                    "project_domain_id": "default",
                },
                "region_name": REGION,
            },
            "lab-appcred": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": self.auth_url,
                    "application_credential_id": self.planted.app_cred_forever,
                    "application_credential_secret": self.planted.app_cred_secret,
                },
                "region_name": REGION,
            },
        }
        path = self.directory / "clouds.yaml"
        path.write_text(yaml.safe_dump({"clouds": clouds}))
        path.chmod(0o600)
        return path

    def environment(self) -> dict[str, str]:
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml())}

    def fix(self) -> None:
        """Remediate the main flaws: SSH closed, volume encrypted, container and image private."""
        assert self.fake is not None
        data = self.fake.data
        for group in data.security_groups:
            group["security_group_rules"] = [
                r
                for r in group["security_group_rules"]
                if r.get("port_range_min") != 22 or r.get("remote_ip_prefix")
            ]
        for item in data.volumes:
            item["encrypted"] = True
        for headers in data.containers.values():
            headers.pop("X-Container-Read", None)
        for item in data.images:
            if item["owner"] == data.project_id:
                item["visibility"] = "private"


def seeded_data(project: str) -> CloudData:
    """A project with flaws next to clean counterparts (see the module docstring)."""
    data = CloudData(project_id=project)
    data.security_groups = [
        security_group(
            "sg-open-ssh",
            "web-admin",
            project,
            {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
            {"protocol": "tcp", "port_range_min": 443, "port_range_max": 443},
        ),
        security_group(
            "sg-clean",
            "web-clean",
            project,
            {
                "protocol": "tcp",
                "port_range_min": 22,
                "port_range_max": 22,
                "remote_ip_prefix": "10.0.0.0/8",
            },
        ),
        security_group(
            "sg-db-v6",
            "db-v6",
            project,
            {
                "ethertype": "IPv6",
                "protocol": "tcp",
                "port_range_min": 5432,
                "port_range_max": 5432,
            },
        ),
    ]
    data.ports = [{"id": "port-1", "security_groups": ["sg-open-ssh"]}]
    floating = {
        "OS-EXT-IPS-MAC:mac_addr": "aa:bb:cc:dd:ee:01",
        "OS-EXT-IPS:type": "floating",
        "addr": "141.94.0.10",
        "version": 4,
    }
    data.servers = [
        server(
            "srv-leaky",
            "app-leaky",
            project,
            metadata={"db_password": "hunter2", "role": "app"},
            key_name="ops",
            security_groups=[{"name": "web-admin"}],
        ),
        server("srv-clean", "app-clean", project, metadata={"role": "app"}, config_drive="True"),
    ]
    data.servers[0]["addresses"]["private"].append(floating)
    data.volumes = [
        volume("vol-plain", "data-plain", project),
        volume(
            "vol-luks",
            "data-luks",
            project,
            encrypted=True,
            volume_type="luks",
            bootable="true",
            attachments=[{"server_id": "srv-clean", "id": "vol-luks", "device": "/dev/vdb"}],
            status="in-use",
        ),
    ]
    data.images = [
        image("img-own-public", "golden-public", project, visibility="public"),
        image("img-own-private", "golden-private", project, protected=True),
        image("img-provider", "debian-12", "provider", visibility="public"),
    ]
    data.containers = {
        "public-docs": {"X-Container-Read": ".r:*,.rlistings", "X-Container-Object-Count": "3"},
        "backups": {"X-Versions-Enabled": "True", "X-Container-Object-Count": "12"},
        "dropbox": {"X-Container-Write": "*:*", "X-Container-Object-Count": "0"},
    }
    data.loadbalancers = [
        {"id": "lb-1", "name": "front", "vip_address": "141.94.0.20", "project_id": project}
    ]
    data.listeners = [
        listener("lsn-http", "front-http", "HTTP", 80, "lb-1"),
        listener(
            "lsn-tls",
            "front-tls",
            "TERMINATED_HTTPS",
            443,
            "lb-1",
            tls_versions=["TLSv1.2", "TLSv1.3"],
        ),
        listener(
            "lsn-legacy",
            "intranet-tls",
            "TERMINATED_HTTPS",
            8443,
            "lb-1",
            tls_versions=["TLSv1", "TLSv1.1", "TLSv1.2"],
        ),
    ]
    return data


def demo_data(project: str) -> CloudData:
    """The demo's share: three flaws the fix resolves, next to their clean twins.

    The committee report's body has a page budget, so the demo plants fewer kinds of
    resource than the tests do (:func:`seeded_data`).
    """
    full = seeded_data(project)
    data = CloudData(project_id=project)
    data.security_groups = [g for g in full.security_groups if g["id"] != "sg-db-v6"]
    data.ports = full.ports
    data.volumes = full.volumes
    data.containers = {k: v for k, v in full.containers.items() if k != "dropbox"}
    return data


def _read_port(output: str) -> int | None:
    for line in output.splitlines():
        if line.startswith("keystone listening on 127.0.0.1:"):
            return int(line.rsplit(":", 1)[1])
    return None


def demo_part(ctx: DemoContext) -> DemoPart:
    """The OpenStack part of ``rempart demo``: the seeded project, then :meth:`Lab.fix`
    between the two scans (needs Keystone: ``make keystone-venv``, and
    ``REMPART_DEMO_OPENSTACK=1``)."""
    from audit.labkit import DemoPart
    from audit.labkit.demo import BACKOFFICE

    if os.environ.get(DEMO_SWITCH) != "1":
        return DemoPart(
            order=40,
            notes=[
                f"{DEMO_SWITCH}=1 adds an OpenStack project to the demo (the real Keystone, "
                "make keystone-venv); it is off by default so the committee report's body "
                "keeps its twelve pages"
            ],
        )
    part = DemoPart(order=40, policies=("openstack-baseline",))
    if not keystone_installed():
        part.notes.append(
            "Keystone is not installed: the OpenStack part was skipped (make keystone-venv)"
        )
        return part
    lab = ctx.stack.enter_context(Lab())
    lab.seed(demo_data, credentials=False)
    part.environment = lab.environment()
    part.scope = {"openstack": {"auth_urls": [lab.auth_url], "projects": [PROJECT]}}
    part.networks = ("127.0.0.1/32",)
    part.add(BACKOFFICE, "openstack://lab")
    part.fix = lab.fix
    return part


if __name__ == "__main__":  # pragma: no cover - a manual way to keep a lab running
    with Lab() as running:
        running.seed()
        print(running.environment(), file=sys.stderr)
        input("lab running; press Enter to stop\n")
