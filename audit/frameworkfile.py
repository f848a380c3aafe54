"""Validation of a framework catalogue file (pydantic), apart from the catalogues' use.

Only a catalogue that changed (or a cold cache) is validated: :mod:`audit.frameworks`
keeps the validated catalogues as JSON, so a scan's score snapshot never imports this
module, pydantic or YAML. A catalogue is input: unknown keys are mistakes, an id that
differs from the file name or a control id given twice is refused with the file named.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from audit.errors import InputError
from audit.frameworks import Control, Family, Framework


class _Strict(BaseModel):
    """Catalogue files are input: unknown keys are mistakes, models are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class FamilyModel(_Strict):
    """A group of controls (ISO theme, CIS control, ANSSI chapter) used by the heatmap."""

    title: str
    title_en: str


class ControlModel(_Strict):
    """One control of a framework, as the catalogue describes it."""

    id: str
    title: str
    title_en: str
    level: str | None = None
    family: str | None = None
    aliases: tuple[str, ...] = ()
    measures: tuple[str, ...] = ()


class FrameworkModel(_Strict):
    """A whole catalogue: header (source and version are mandatory) and controls."""

    framework: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    title_en: str
    publisher: str
    version: str
    source: str
    url: str
    levels: tuple[str, ...] = ()
    families: dict[str, FamilyModel] = Field(default_factory=dict)
    controls: tuple[ControlModel, ...]

    def compiled(self) -> Framework:
        """The catalogue as the frozen dataclasses the rest of the code reads."""
        return Framework(
            framework=self.framework,
            title=self.title,
            title_en=self.title_en,
            publisher=self.publisher,
            version=self.version,
            source=self.source,
            url=self.url,
            controls=tuple(Control(**c.model_dump()) for c in self.controls),
            levels=self.levels,
            families={k: Family(**v.model_dump()) for k, v in self.families.items()},
        )


def validate_file(path: Path) -> Framework:
    """Read and validate one catalogue file; the file stem must equal its ``framework``."""
    try:
        # libyaml's safe loader when available
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - safe
        framework = FrameworkModel.model_validate(raw).compiled()
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise InputError(f"invalid framework catalogue: {exc}", source=str(path)) from None
    if framework.framework != path.stem:
        raise InputError(
            f"framework id {framework.framework!r} differs from file name", source=str(path)
        )
    _refuse_duplicates(framework, path)
    return framework


def _refuse_duplicates(framework: Framework, path: Path) -> None:
    seen: set[str] = set()
    for control in framework.controls:
        for name in (control.id, *control.aliases):
            if name in seen:
                raise InputError(f"control id {name!r} appears twice", source=str(path))
            seen.add(name)
