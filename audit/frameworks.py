"""Framework catalogues: what a control id means, and which controls our rules cover.

A catalogue (``policies/frameworks/<id>.yaml``) lists the controls of one framework (ANSSI
hygiene guide, NIS 2 Art. 21(2), ISO/IEC 27001:2022 Annex A, …) with French and English
titles and, where the framework has them, a level and a family. Rules cite controls by id
(``controls: {nis2: 21.2.h}``); the policy loader calls :func:`unknown_controls` so a typo
is refused before a scan rather than silently reported as "not assessed".

Coverage answers the committee's question "what does this tool check for us, and what
stays manual?": a control with at least one rule is *automated*, the others are *manual*.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audit import __version__
from policies import BUILTIN_DIR

CACHE_FORMAT = 1
"""Bumped when the cached layout of catalogues changes."""


@dataclass(frozen=True)
class Family:
    """A group of controls (ISO theme, CIS control, ANSSI chapter) used by the heatmap."""

    title: str
    title_en: str


@dataclass(frozen=True)
class Control:
    """One control of a framework, as the catalogue describes it."""

    id: str
    title: str
    title_en: str
    level: str | None = None
    family: str | None = None
    aliases: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()

    def label(self, lang: str) -> str:
        """The title in the reader's language (French unless English is asked for)."""
        return self.title_en if lang == "en" else self.title


@dataclass(frozen=True)
class Framework:
    """A whole catalogue: header (source and version are mandatory) and controls.

    Plain frozen dataclasses, so that reading the catalogues on the scan path (the score
    snapshot of every scan) needs no pydantic: :mod:`audit.frameworkfile` validates a
    file, and the validated catalogues are cached as JSON (:mod:`audit.cache`).
    """

    framework: str
    title: str
    title_en: str
    publisher: str
    version: str
    source: str
    url: str
    controls: tuple[Control, ...]
    levels: tuple[str, ...] = ()
    families: Mapping[str, Family] = field(default_factory=dict)

    def label(self, lang: str) -> str:
        """The framework's title in the reader's language."""
        return self.title_en if lang == "en" else self.title

    @functools.cached_property
    def _index(self) -> dict[str, Control]:
        index: dict[str, Control] = {}
        for control in self.controls:
            for name in (control.id, *control.aliases):
                index[name] = control
        return index

    def control(self, control_id: str) -> Control | None:
        """The control named ``control_id`` (its id or an alias), or None."""
        return self._index.get(control_id)

    def family_of(self, control: Control) -> str:
        """The family key of a control: declared, else the longest matching id prefix."""
        if control.family:
            return control.family
        best = ""
        for key in self.families:
            if control.id.startswith(f"{key}.") and len(key) > len(best):
                best = key
        return best or control.id

    def family_label(self, key: str, lang: str) -> str:
        """Readable name of a family key: its title, never a bare code.

        A catalogue without families (NIS 2's points 21(2)(a)–(j)) groups by control, so
        the key is a control id and the control's title names it.
        """
        family = self.families.get(key)
        if family is not None:
            return f"{key} — {family.title_en if lang == 'en' else family.title}"
        control = self.control(key)
        if control is not None:
            title = control.title_en if lang == "en" and control.title_en else control.title
            return f"{key} — {title}"
        return key


def catalogue_dir() -> Path:
    """Where the shipped catalogues live (inside the installed ``policies`` package)."""
    return BUILTIN_DIR / "frameworks"


def load_framework(path: Path) -> Framework:
    """Read and validate one catalogue file; the file stem must equal its ``framework``."""
    from audit.frameworkfile import validate_file

    return validate_file(path)


@functools.cache
def load_catalogues() -> dict[str, Framework]:
    """Every shipped catalogue by framework id (read once per process).

    Validated catalogues are cached, keyed by the files' names and bytes and the code that
    validates them, so a scan reads JSON instead of importing pydantic and YAML.
    """
    from audit.cache import read_json, write_json

    key = _catalogues_key()
    cached = read_json("frameworks.json", key)
    if cached is not None:
        try:
            return {name: decode(data) for name, data in cached.items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            pass
    paths = sorted(catalogue_dir().glob("*.yaml"))
    catalogues = {path.stem: load_framework(path) for path in paths}
    write_json("frameworks.json", key, {name: encode(f) for name, f in catalogues.items()})
    return catalogues


@functools.cache
def catalogues_digest() -> bytes:
    """The shipped catalogues' names and bytes, digested (read once per process): what
    the validated catalogues and the compiled packs (whose rule controls are checked
    against them) are cached under."""
    digest = hashlib.sha256()
    for path in sorted(catalogue_dir().glob("*.yaml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _catalogues_key() -> str:
    digest = hashlib.sha256(f"rempart-frameworks/{CACHE_FORMAT}/{__version__}".encode())
    here = Path(__file__).parent
    for path in (here / "frameworks.py", here / "frameworkfile.py"):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(catalogues_digest())
    return digest.hexdigest()


def encode(framework: Framework) -> dict[str, Any]:
    """A catalogue as JSON data (tuples become lists)."""
    return asdict(framework)


def decode(data: Mapping[str, Any]) -> Framework:
    """A catalogue back from :func:`encode`'s data."""
    return Framework(
        framework=str(data["framework"]),
        title=str(data["title"]),
        title_en=str(data["title_en"]),
        publisher=str(data["publisher"]),
        version=str(data["version"]),
        source=str(data["source"]),
        url=str(data["url"]),
        controls=tuple(
            Control(
                id=str(c["id"]),
                title=str(c["title"]),
                title_en=str(c["title_en"]),
                level=c["level"],
                family=c["family"],
                aliases=tuple(c["aliases"]),
                measures=tuple(c["measures"]),
            )
            for c in data["controls"]
        ),
        levels=tuple(data["levels"]),
        families={
            k: Family(str(v["title"]), str(v["title_en"])) for k, v in data["families"].items()
        },
    )


def get_framework(framework_id: str) -> Framework | None:
    """The catalogue of ``framework_id``, or None when no such framework ships."""
    return load_catalogues().get(framework_id)


def unknown_controls(rule_controls: Mapping[str, Sequence[str]]) -> list[str]:
    """The ``framework:id`` pairs of a rule that no catalogue knows (empty: all valid)."""
    catalogues = load_catalogues()
    unknown: list[str] = []
    for framework_id, ids in rule_controls.items():
        framework = catalogues.get(framework_id)
        for control_id in ids:
            if framework is None or framework.control(str(control_id)) is None:
                unknown.append(f"{framework_id}:{control_id}")
    return unknown


def canonical_id(framework_id: str, control_id: str) -> str:
    """The catalogue id of ``control_id`` (resolving aliases); unchanged when unknown."""
    framework = get_framework(framework_id)
    control = framework.control(control_id) if framework else None
    return control.id if control else control_id


@dataclass(frozen=True)
class ControlCoverage:
    """One control and the rules that give evidence for it (none: checked by hand)."""

    control: Control
    family: str
    rules: tuple[str, ...]

    @property
    def is_manual(self) -> bool:
        """True when no shipped rule maps to the control."""
        return not self.rules


RuleControls = tuple[str, Mapping[str, Sequence[str]]]
"""A rule id and its ``controls`` mapping, as the policy loader compiles them."""


def coverage(framework: Framework, rules: Iterable[RuleControls]) -> list[ControlCoverage]:
    """Every control of ``framework`` with the ids of the rules that map to it."""
    by_control: dict[str, list[str]] = {c.id: [] for c in framework.controls}
    for rule_id, controls in rules:
        for control_id in controls.get(framework.framework, ()):
            control = framework.control(str(control_id))
            if control is not None and rule_id not in by_control[control.id]:
                by_control[control.id].append(rule_id)
    return [
        ControlCoverage(c, framework.family_of(c), tuple(sorted(by_control[c.id])))
        for c in framework.controls
    ]
