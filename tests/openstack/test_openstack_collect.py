"""The seeded project read through the real client, the real Keystone and the faked services."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from audit.plugins import Scope
from checks.openstack.collectors import ALL
from checks.openstack.fake import image
from checks.openstack.lab import Lab

from .conftest import by_type, declared, scan


def test_security_groups_normalise_rules_and_see_attachment(lab: Lab) -> None:
    obs, _ = scan("openstack://lab")
    groups = by_type(obs, "openstack.network.security_group")
    assert groups["sg-open-ssh"]["world_open_admin_ports"] == [22]
    assert groups["sg-open-ssh"]["is_attached"] is True
    assert groups["sg-clean"]["world_open_admin_ports"] == []
    assert groups["sg-clean"]["is_attached"] is False
    # an IPv6 rule without remote prefix or group admits every IPv6 address
    assert groups["sg-db-v6"]["world_open_ports"] == [5432]
    rule = groups["sg-db-v6"]["rules"][0]
    assert rule["source"] == "::/0" and rule["source_kind"] == "ipv6"


def test_servers_volumes_containers_images_listeners(lab: Lab) -> None:
    obs, _ = scan("openstack://lab")
    servers = by_type(obs, "openstack.compute.server")
    assert servers["srv-leaky"]["secret_metadata_keys"] == ["db_password"]
    assert servers["srv-leaky"]["public_addresses"] == ["141.94.0.10"]
    assert servers["srv-clean"]["has_config_drive"] is True
    assert "hunter2" not in json.dumps([dict(r.facts) for r in obs.resources])
    volumes = by_type(obs, "openstack.blockstorage.volume")
    assert volumes["vol-plain"]["is_encrypted"] is False
    assert volumes["vol-luks"]["is_encrypted"] is True
    assert volumes["vol-luks"]["attached_to"] == ["srv-clean"]
    containers = by_type(obs, "openstack.objectstorage.container")
    assert containers["public-docs"]["is_public_listing"] is True
    assert containers["backups"]["is_versioned"] is True
    images = by_type(obs, "openstack.image")
    assert images["img-own-public"]["is_owned"] is True
    assert images["img-provider"]["is_owned"] is False
    listeners = by_type(obs, "openstack.loadbalancer.listener")
    assert listeners["lsn-http"]["is_exposed"] is True
    assert listeners["lsn-legacy"]["allows_legacy_tls"] is True


def test_a_reader_sees_its_application_credentials_but_not_the_users(lab: Lab) -> None:
    # Given the real Keystone and a project reader
    obs, _ = scan("openstack://lab")
    # Then listing users is denied, and the problem names the call and its policy
    denied = [p for p in obs.problems if p.resource_type == "openstack.identity.user"]
    assert denied and denied[0].reason == "access_denied"
    assert "identity:GET /v3/users" in denied[0].message
    assert "identity:list_users" in denied[0].message
    creds = by_type(obs, "openstack.identity.application_credential")
    assert creds[lab.planted.app_cred_forever]["has_expiry"] is False
    assert creds[lab.planted.app_cred_forever]["is_unrestricted"] is True
    assert creds[lab.planted.app_cred_expiring]["has_expiry"] is True
    project = by_type(obs, "openstack.project")
    assert next(iter(project.values()))["is_identity_visible"] is False


def test_an_admin_sees_users_and_their_mfa(lab: Lab) -> None:
    obs, _ = scan("openstack://lab-admin")
    users = {u["name"]: u for u in by_type(obs, "openstack.identity.user").values()}
    assert users["alice-mfa"]["is_mfa_enabled"] is True
    assert users["alice-mfa"]["mfa_rules"] == [["password", "totp"]]
    assert users["bob-nomfa"]["is_mfa_enabled"] is False
    project = next(iter(by_type(obs, "openstack.project").values()))
    assert project["is_identity_visible"] is True


def test_an_application_credential_authenticates(lab: Lab) -> None:
    obs, _ = scan("openstack://lab-appcred", declared(lab))
    project = next(iter(by_type(obs, "openstack.project").values()))
    assert project["uses_application_credential"] is True
    assert project["project_name"] == "lab"
    assert by_type(obs, "openstack.compute.server")


def test_a_token_for_an_undeclared_project_reads_nothing_more(lab: Lab) -> None:
    # Given an application credential (its project is known only from the token)
    before = len(lab.fake.requests) if lab.fake else 0
    obs, api = scan("openstack://lab-appcred", declared(lab, projects=("other",)))
    # Then the scan stops after the token: refused, no service call
    assert obs.resources == ()
    assert (
        obs.problems[0].reason == "refused"
        and "outside the declared scope" in obs.problems[0].message
    )
    assert set(api.calls) == {"identity:POST /v3/auth/tokens"}
    assert lab.fake is not None and len(lab.fake.requests) == before


def test_every_request_is_a_declared_call(lab: Lab) -> None:
    assert lab.fake is not None
    lab.fake.requests.clear()
    _, api = scan("openstack://lab-admin")
    declared_calls = {c.name for collector in ALL for c in collector.calls}
    declared_calls.add("identity:POST /v3/auth/tokens")
    assert set(api.calls) <= declared_calls
    seen = {f"{s}:{m} {p}" for s, m, p in lab.fake.requests}
    assert seen <= declared_calls
    # every service call the collectors declare was exercised by the seeded lab
    assert {c for c in declared_calls if not c.startswith("identity:")} <= seen


def test_glance_pages_are_followed(lab: Lab) -> None:
    assert lab.fake is not None
    extra = [image(f"img-bulk-{i:03}", f"bulk-{i}", "provider") for i in range(60)]
    lab.fake.data.images += extra
    try:
        obs, api = scan("openstack://lab")
    finally:
        del lab.fake.data.images[-60:]
    assert len(by_type(obs, "openstack.image")) == 63
    assert api.calls["image:GET /v2/images"] == 3  # Glance's default page is 25


def test_permissions_list_every_call_with_its_policy() -> None:
    from checks.openstack import FAMILY

    assert FAMILY.permissions is not None
    document = FAMILY.permissions()
    assert document["role"] == "reader"
    names = {f"{c['service']}:{c['method']} {c['path']}" for c in document["calls"]}
    assert {c.name for collector in ALL for c in collector.calls} <= names
    assert all(re.match(r"\S", c["policy"]) for c in document["calls"])


def test_emitted_facts_are_documented_and_documented_facts_emitted(lab: Lab) -> None:
    from checks.openstack import FAMILY

    documented = {t.name: {f.name for f in t.facts} for t in FAMILY.resource_types}
    obs, _ = scan("openstack://lab-admin")
    emitted: dict[str, set[str]] = {}
    for resource in obs.resources:
        assert resource.type in documented, resource.type
        names = set(resource.facts) | set(resource.unknown)
        assert names <= documented[resource.type], (
            resource.type,
            names - documented[resource.type],
        )
        emitted.setdefault(resource.type, set()).update(names)
    assert emitted == documented


def test_the_demo_part_shows_a_flawed_project_then_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contextlib import ExitStack

    from audit.labkit import DemoContext
    from checks.openstack.lab import DEMO_SWITCH, demo_part

    # Off by default: a note says how to turn it on, and nothing is started
    monkeypatch.delenv(DEMO_SWITCH, raising=False)
    with ExitStack() as stack:
        off = demo_part(DemoContext(tmp_path, stack))
    assert off.targets == [] and off.policies == () and DEMO_SWITCH in off.notes[0]
    # On: the seeded project, declared in the scope, with a fix that closes SSH
    monkeypatch.setenv(DEMO_SWITCH, "1")
    with ExitStack() as stack:
        part = demo_part(DemoContext(tmp_path, stack))
        assert [t for _, t in part.targets] == ["openstack://lab"]
        assert part.policies == ("openstack-baseline",)
        for name, value in part.environment.items():
            monkeypatch.setenv(name, value)
        scope = Scope(
            networks=part.networks,
            blocks={"openstack": {k: tuple(v) for k, v in part.scope["openstack"].items()}},
        )
        before, _ = scan("openstack://lab", scope)
        assert by_type(before, "openstack.network.security_group")["sg-open-ssh"][
            "world_open_admin_ports"
        ] == [22]
        assert part.fix is not None
        part.fix()
        after, _ = scan("openstack://lab", scope)
        groups = by_type(after, "openstack.network.security_group")
        assert groups["sg-open-ssh"]["world_open_admin_ports"] == []
        assert all(
            v["is_encrypted"] for v in by_type(after, "openstack.blockstorage.volume").values()
        )
