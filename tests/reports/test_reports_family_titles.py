"""Framework tables name their families, never a bare code such as "21.2.b"."""

from __future__ import annotations

import pytest

from audit.frameworks import load_catalogues


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_every_family_of_every_catalogue_has_a_title(lang: str) -> None:
    for fw_id, framework in load_catalogues().items():
        for control in framework.controls:
            key = framework.family_of(control)
            label = framework.family_label(key, lang)
            assert label.startswith(f"{key} — "), (fw_id, key, label)
            assert len(label) > len(key) + 3, (fw_id, key, label)


def test_nis2_points_read_as_their_titles() -> None:
    nis2 = load_catalogues()["nis2"]
    assert nis2.family_label("21.2.b", "fr") == "21.2.b — Gestion des incidents"
    assert nis2.family_label("21.2.b", "en") == "21.2.b — Incident handling"
