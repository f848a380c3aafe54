"""The policy file's schema and every check a policy must pass before it compiles.

Kept apart from :mod:`audit.policy` because it needs pydantic, whose import and model
building cost about a tenth of a second: a scan whose built-in packs are already compiled
(:mod:`audit.policycache`) never imports this module. A policy file is untrusted input
written by a person: it becomes a frozen pydantic model with ``extra="forbid"`` (so a typo
is an error, not a silently ignored key), then the plain frozen dataclasses of
:mod:`audit.policy`. The JSON Schema editors use is generated from the same models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from audit.errors import PolicyError
from audit.evaluate import (
    OPERATORS,
    VALUELESS_OPS,
    AllOf,
    AnyOf,
    Condition,
    Each,
    Leaf,
    Not,
    compile_key,
    read_paths,
    referenced_facts,
)
from audit.models import Severity, Translation
from audit.policy import (
    Declaration,
    FactCatalogue,
    Policy,
    Reference,
    Rule,
    raise_all,
)
from audit.regex import PatternError, compile_pattern
from audit.yamlfile import YamlDocument, format_path

RULE_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)*-[0-9]{3}$")
POLICY_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class LeafModel(_Frozen):
    """``{key, op, value}`` or ``{key, op, param}``."""

    key: str = Field(description="JMESPath expression over the resource's facts")
    op: str = Field(description="Operator: " + ", ".join(OPERATORS))
    value: Any = None
    param: str | None = Field(default=None, description="Take the value from this parameter")

    @field_validator("op")
    @classmethod
    def _known_op(cls, op: str) -> str:
        if op not in OPERATORS:
            raise ValueError(f"unknown operator {op!r} (known: {', '.join(OPERATORS)})")
        return op

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str) -> str:
        try:
            compile_key(key)
        except Exception as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"bad key expression {key!r}: {first_line}") from None
        return key


class AllModel(_Frozen):
    """Every sub-condition holds."""

    all: list[ConditionModel] = Field(min_length=1)


class AnyModel(_Frozen):
    """At least one sub-condition holds."""

    any: list[ConditionModel] = Field(min_length=1)


class NotModel(_Frozen):
    """The sub-condition does not hold."""

    not_: ConditionModel = Field(alias="not")


class EachSpec(_Frozen):
    """The list at ``key`` and the condition each element must satisfy."""

    key: str
    expect: ConditionModel

    @field_validator("key")
    @classmethod
    def _valid_key(cls, key: str) -> str:
        return LeafModel._valid_key(key)


class EachModel(_Frozen):
    """Every element of a list satisfies a condition."""

    each: EachSpec


def _condition_tag(value: Any) -> str:
    """Route a condition mapping to its model by its distinctive key."""
    if isinstance(value, dict):
        for name in ("all", "any", "not", "each"):
            if name in value:
                return f"<{name}>"
    elif isinstance(value, BaseModel):
        return {AllModel: "<all>", AnyModel: "<any>", NotModel: "<not>", EachModel: "<each>"}.get(
            type(value), "<leaf>"
        )
    return "<leaf>"


ConditionModel = Annotated[
    Annotated[LeafModel, Tag("<leaf>")]
    | Annotated[AllModel, Tag("<all>")]
    | Annotated[AnyModel, Tag("<any>")]
    | Annotated[NotModel, Tag("<not>")]
    | Annotated[EachModel, Tag("<each>")],
    Discriminator(_condition_tag),
]

for _model in (AllModel, AnyModel, NotModel, EachSpec, EachModel):
    _model.model_rebuild()


class ParamModel(_Frozen):
    """A tunable value with its default; an inventory may override it."""

    default: Any
    description: str = ""


class ReferenceModel(_Frozen):
    """Where a rule comes from: the document, its version, the section or recommendation.

    Built-in rules give one at least (a test walks the packs); a body's own rules may
    too, or give a plain string (a URL, an internal note).
    """

    document: str = Field(
        min_length=1, description="e.g. 'CIS Amazon Web Services Foundations Benchmark'"
    )
    version: str = Field(min_length=1, description="e.g. '3.0.0', '1.2', '2020-03'")
    section: str = Field(
        min_length=1, description="Section or recommendation number, e.g. '1.16', 'R4'"
    )
    url: str | None = None
    note: str = Field(default="", description="How the rule departs from the text, if it does")


class DeclarationModel(_Frozen):
    """A pack parameter through which an inventory declares a rule met by other means.

    When the parameter holds a value and the facts do not meet the expectation (or could
    not be read), the finding passes with ``message`` followed by the declared value, never
    a bare "ok": the report says that the inventory vouched for it, and with what words.
    """

    param: str = Field(description="The pack parameter an inventory sets to declare it")
    message: str = Field(min_length=1, description="How the rule is met; the value follows")


class MessageModel(_Frozen):
    """A sentence about the resource, in English and French, over its facts."""

    en: str = Field(min_length=1, description="e.g. 'Security group {name} opens {ports}'")
    fr: str | None = None

    @field_validator("en", "fr")
    @classmethod
    def _valid_template(cls, text: str | None) -> str | None:
        from audit.evaluate.template import placeholders

        if text is not None:
            placeholders(text)
        return text


LANGUAGE = re.compile(r"^[a-z]{2,3}$")
"""An ISO 639 language code, the key of a rule's translations (``fr``, ``de``)."""


class TranslationModel(_Frozen):
    """A rule's texts in one more language; what is not given falls back to English."""

    title: str | None = Field(default=None, min_length=1)
    remediation: str | None = Field(default=None, min_length=1)
    message: str | None = Field(default=None, min_length=1)

    @field_validator("message")
    @classmethod
    def _valid_template(cls, text: str | None) -> str | None:
        from audit.evaluate.template import placeholders

        if text is not None:
            placeholders(text)
        return text


class RuleModel(_Frozen):
    """One rule: a resource type, an optional filter, an expectation, and its meaning."""

    id: str
    title: str
    title_fr: str | None = None
    resource: str
    where: ConditionModel | None = None
    expect: ConditionModel
    severity: Severity
    controls: dict[str, str | list[str]] = Field(default_factory=dict)
    remediation: str | None = Field(
        default=None, min_length=1, description="What to do; reports say when none is given"
    )
    remediation_fr: str | None = None
    description: str = ""
    references: list[str | ReferenceModel] = Field(default_factory=list)
    context: list[str] = Field(
        default_factory=list,
        description="Fact keys whose values every pass or fail also reports (evidence, message)",
    )
    declared: DeclarationModel | None = None
    message: MessageModel | None = Field(
        default=None,
        description="What a failure says, with {fact.path} placeholders (no code)",
    )
    same_as: list[str] = Field(
        default_factory=list,
        description="Rules of other packs that check the same requirement on the same "
        "resource (twins): reports list them once, an acceptance covers them all",
    )
    translations: dict[str, TranslationModel] = Field(
        default_factory=dict,
        description="The title, remediation and message in other languages, by language "
        "code ({de: {title: ...}}); title_fr, remediation_fr and message.fr are French's",
    )

    @field_validator("translations")
    @classmethod
    def _language_codes(cls, texts: dict[str, TranslationModel]) -> dict[str, TranslationModel]:
        for lang in texts:
            if not LANGUAGE.match(lang) or lang == "en":
                raise ValueError(
                    f"{lang!r} is not a language code other than English's "
                    "(two or three lower-case letters: fr, de)"
                )
        return texts

    @field_validator("same_as")
    @classmethod
    def _twin_ids(cls, ids: list[str]) -> list[str]:
        for value in ids:
            if not RULE_ID.match(value):
                raise ValueError(f"same_as: {value!r} is not a rule id (AREA-TOPIC-NNN)")
        return ids

    @field_validator("context")
    @classmethod
    def _valid_context(cls, keys: list[str]) -> list[str]:
        return [LeafModel._valid_key(key) for key in keys]

    @field_validator("id")
    @classmethod
    def _rule_id(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError(f"rule id {value!r} must look like AREA-TOPIC-NNN")
        return value


class PolicyModel(_Frozen):
    """A policy file."""

    policy: str
    title: str
    title_en: str | None = None
    version: str = "1"
    description: str = ""
    params: dict[str, ParamModel] = Field(default_factory=dict)
    rules: list[RuleModel] = Field(min_length=1)

    @field_validator("policy")
    @classmethod
    def _name(cls, value: str) -> str:
        if not POLICY_NAME.match(value):
            raise ValueError(f"policy name {value!r} must be lower-case words joined by '-'")
        return value


def policy_schema() -> dict[str, Any]:
    """JSON Schema of policy files, generated from the models editors validate against."""
    schema = PolicyModel.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Rempart policy"
    return schema


def compile_document(doc: YamlDocument, catalogue: FactCatalogue | None) -> Policy:
    """Validate a parsed policy file and compile it; raise every fault it has at once.

    ``catalogue`` maps each known resource type to its documented facts (``None``: types
    and facts are not checked; a type whose facts are :data:`ANY_FACT`: any key).
    """
    if not isinstance(doc.data, dict):
        raise PolicyError(
            "a policy file must be a mapping with 'policy' and 'rules'", source=doc.source, line=1
        )
    try:
        model = PolicyModel.model_validate(doc.data)
    except ValidationError as exc:
        raise_all(_validation_errors(exc, doc))
    raise_all(_check_model(model, doc, catalogue))
    return _compile(model, doc.source, _warnings(model, doc))


def _validation_errors(exc: ValidationError, doc: YamlDocument) -> list[PolicyError]:
    """Each pydantic error as one line: file, line, YAML path, message (one per path)."""
    problems: dict[str, PolicyError] = {}
    for error in exc.errors():
        path = _document_path(error["loc"], doc.data, error["type"] == "missing")
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown field {path[-1]!r}"
        elif error["type"] == "missing":
            message = "required field is missing"
        where = format_path(path)
        problems.setdefault(
            where, PolicyError(f"{where}: {message}", source=doc.source, line=doc.line_of(path))
        )
    return sorted(problems.values(), key=lambda p: p.line or 0)


def _document_path(loc: Sequence[str | int], data: Any, missing: bool) -> list[str | int]:
    """The part of a pydantic location that names places in the YAML document.

    pydantic adds the branch of a union it tried (``str``, ``list[str]``, a tag): each
    branch's error would otherwise read as a fault of its own at a place that does not
    exist. A missing field is named although the document does not hold it.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        name = "not" if part == "not_" else part
        if not _holds(node, name):
            continue  # a union branch or a tag, not a place in the document
        node = node[name]
        path.append(name)
    if missing and loc:
        path.append("not" if loc[-1] == "not_" else loc[-1])
    return path


def _holds(node: Any, name: str | int) -> bool:
    """Whether ``node[name]`` is a place in the document."""
    if isinstance(node, dict):
        return name in node
    return isinstance(node, list) and isinstance(name, int) and 0 <= name < len(node)


def _warnings(model: PolicyModel, doc: YamlDocument) -> tuple[str, ...]:
    """What is allowed but worth saying: a rule without a remediation."""
    return tuple(
        f"{doc.source}:{doc.line_of(['rules', i])}: rules[{i}] ({rule.id}): no remediation "
        "given; reports will say so"
        for i, rule in enumerate(model.rules)
        if not rule.remediation
    )


def _check_model(
    model: PolicyModel, doc: YamlDocument, known: FactCatalogue | None
) -> list[PolicyError]:
    """Checks pydantic cannot express: unique ids, params, values, types, facts, controls."""
    problems: list[PolicyError] = []
    seen: dict[str, int] = {}
    for index, rule in enumerate(model.rules):
        path: list[str | int] = ["rules", index]
        if rule.id in seen:
            problems.append(
                PolicyError(
                    f"rules[{index}].id: duplicate rule id {rule.id!r} "
                    f"(first at rules[{seen[rule.id]}])",
                    source=doc.source,
                    line=doc.line_of([*path, "id"]),
                )
            )
        seen.setdefault(rule.id, index)
        facts = _facts_of(rule, path, known, doc, problems)
        checker = _LeafChecker(model, doc, facts, rule.resource, problems)
        for name in ("where", "expect"):
            cond = getattr(rule, name)
            if cond is not None:
                _check_condition(cond, [*path, name], checker)
        _collect(problems, _check_controls, rule, path, doc)
        _check_context_and_declaration(rule, path, checker)
        _collect(problems, _check_not_own_twin, rule, path, doc)
    return problems


def _check_not_own_twin(rule: RuleModel, path: list[str | int], doc: YamlDocument) -> None:
    """A rule is not its own twin; whether the others exist is known only beside the
    other packs (:func:`audit.policy.check_twins`)."""
    if rule.id in rule.same_as:
        where = [*path, "same_as"]
        raise PolicyError(
            f"{format_path(where)}: a rule cannot be declared the same as itself",
            source=doc.source,
            line=doc.line_of(where),
        )


def _check_context_and_declaration(
    rule: RuleModel, path: list[str | int], checker: _LeafChecker
) -> None:
    """``context`` keys read documented facts; ``declared`` reads a declared parameter."""
    if checker.facts is not None:
        for i, key in enumerate(rule.context):
            _collect(checker.problems, _check_key, key, [*path, "context", i], checker)
        _check_message(rule, path, checker)
    if rule.declared is not None and rule.declared.param not in checker.model.params:
        where = [*path, "declared", "param"]
        checker.problems.append(
            PolicyError(
                f"{format_path(where)}: parameter {rule.declared.param!r} is not declared "
                "in 'params'",
                source=checker.doc.source,
                line=checker.doc.line_of(where),
            )
        )


def _check_message(rule: RuleModel, path: list[str | int], checker: _LeafChecker) -> None:
    """Every placeholder of the message names a documented fact of the rule's type."""
    from audit.evaluate.template import placeholders

    templates: list[tuple[list[str | int], str]] = []
    if rule.message is not None:
        templates += [([*path, "message", "en"], rule.message.en)]
        templates += [([*path, "message", "fr"], rule.message.fr or "")]
    for lang, text in rule.translations.items():
        templates += [([*path, "translations", lang, "message"], text.message or "")]
    for where, template in templates:
        for name in placeholders(template):
            _collect(checker.problems, _check_key, name, where, checker)
    _check_remediation(rule, path, checker)


def _check_remediation(rule: RuleModel, path: list[str | int], checker: _LeafChecker) -> None:
    """Every ``{fact.path}`` of a remediation names a documented fact of the rule's type
    (the report fills it with each finding's resource; other braces are command text)."""
    from audit.evaluate.template import fill_placeholders

    texts = [([*path, "remediation"], rule.remediation or "")]
    texts += [([*path, "remediation_fr"], rule.remediation_fr or "")]
    for lang, texts_in in rule.translations.items():
        texts += [([*path, "translations", lang, "remediation"], texts_in.remediation or "")]
    for where, remediation in texts:
        for name in fill_placeholders(remediation):
            _collect(checker.problems, _check_key, name, where, checker)


def _facts_of(
    rule: RuleModel,
    path: list[str | int],
    known: FactCatalogue | None,
    doc: YamlDocument,
    problems: list[PolicyError],
) -> Collection[str] | None:
    """The documented facts of the rule's type (None: not checked); unknown type noted."""
    if known is None:
        return None
    if rule.resource not in known:
        problems.append(
            PolicyError(
                f"rules[{path[1]}].resource: unknown resource type {rule.resource!r}",
                source=doc.source,
                line=doc.line_of([*path, "resource"]),
            )
        )
        return None
    facts = known[rule.resource]
    return None if "*" in facts else facts  # a type known by name only (ANY_FACT)


def _collect(problems: list[PolicyError], check: Callable[..., None], *args: Any) -> None:
    try:
        check(*args)
    except PolicyError as exc:
        problems.append(exc)


@dataclass(frozen=True)
class _LeafChecker:
    """What a leaf is checked against, and where its faults go."""

    model: PolicyModel
    doc: YamlDocument
    facts: Collection[str] | None
    resource: str
    problems: list[PolicyError]


def _check_condition(cond: Any, path: list[str | int], checker: _LeafChecker) -> None:
    """Walk a condition: params must be declared, values present where ops need them.

    Keys are checked against the documented facts except under ``each``, where they are
    relative to the list's elements (documented as prose of the list fact).
    """
    if isinstance(cond, LeafModel):
        _collect(checker.problems, _check_leaf, cond, path, checker.model, checker.doc)
        if checker.facts is not None:
            _collect(checker.problems, _check_key, cond.key, [*path, "key"], checker)
    elif isinstance(cond, AllModel | AnyModel):
        subs = cond.all if isinstance(cond, AllModel) else cond.any
        name = "all" if isinstance(cond, AllModel) else "any"
        for i, sub in enumerate(subs):
            _check_condition(sub, [*path, name, i], checker)
    elif isinstance(cond, NotModel):
        _check_condition(cond.not_, [*path, "not"], checker)
    elif isinstance(cond, EachModel):
        if checker.facts is not None:
            _collect(checker.problems, _check_key, cond.each.key, [*path, "each", "key"], checker)
        relative = replace(checker, facts=None)
        _check_condition(cond.each.expect, [*path, "each", "expect"], relative)


def _check_key(key: str, path: list[str | int], checker: _LeafChecker) -> None:
    """Every fact path the key reads must be documented for the rule's resource type."""
    assert checker.facts is not None
    for read in read_paths(key):
        unknown = undocumented(read, checker.facts)
        if unknown is None:
            continue
        hint = did_you_mean(unknown, checker.facts)
        raise PolicyError(
            f"{format_path(path)}: {checker.resource} has no fact {unknown!r}{hint}",
            source=checker.doc.source,
            line=checker.doc.line_of(path),
        )


def undocumented(read: tuple[str, ...], facts: Collection[str]) -> str | None:
    """The first name on ``read`` that ``facts`` does not document, or None.

    ``certificate.days_lef`` is caught because ``certificate``'s fields are documented
    one by one; a path under a fact whose fields are only described in prose (``hsts``,
    ``ingress``) is accepted past that fact.
    """
    for depth in range(1, len(read) + 1):
        name = ".".join(read[:depth])
        if name in facts:
            continue
        parent = ".".join(read[: depth - 1])
        if depth > 1 and not any(f.startswith(parent + ".") for f in facts):
            return None  # the parent's fields are not documented one by one
        return name
    return None


def did_you_mean(name: str, facts: Collection[str]) -> str:
    """`` (did you mean 'protocols'?)`` from the documented names beside the wrong one."""
    import difflib

    parent, _, leaf = name.rpartition(".")
    siblings = {
        fact.rpartition(".")[2]: fact for fact in facts if fact.rpartition(".")[0] == parent
    }
    close = difflib.get_close_matches(leaf, list(siblings), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(siblings[c]) for c in close) + "?)"


def _check_leaf(
    leaf: LeafModel, path: list[str | int], model: PolicyModel, doc: YamlDocument
) -> None:
    def fail(message: str, at: str) -> PolicyError:
        where = [*path, at]
        return PolicyError(
            f"{format_path(where)}: {message}", source=doc.source, line=doc.line_of(where)
        )

    if leaf.param is not None and leaf.value is not None:
        raise fail("give either 'value' or 'param', not both", "param")
    if leaf.param is not None and leaf.param not in model.params:
        raise fail(f"parameter {leaf.param!r} is not declared in 'params'", "param")
    needs_value = leaf.op not in VALUELESS_OPS
    if needs_value and leaf.value is None and leaf.param is None:
        raise fail(f"operator {leaf.op!r} needs a 'value' or a 'param'", "op")
    if leaf.op == "matches" and isinstance(leaf.value, str):
        try:
            compile_pattern(leaf.value)
        except PatternError as exc:
            raise fail(f"bad regular expression: {exc}", "value") from None
    if leaf.op == "matches" and leaf.param is not None:
        _check_pattern_param(model.params[leaf.param].default, fail)
    if (
        leaf.op in {"in", "not_in", "subset_of", "disjoint_from"}
        and leaf.value is not None
        and not isinstance(leaf.value, list)
    ):
        raise fail(f"operator {leaf.op!r} needs a list value", "value")


def _check_pattern_param(default: Any, fail: Callable[[str, str], PolicyError]) -> None:
    """A parameter read by ``matches`` must default to a pattern RE2 compiles (or none)."""
    if default is None:
        return
    if not isinstance(default, str):
        raise fail("a parameter read by 'matches' needs a string default", "param")
    try:
        compile_pattern(default)
    except PatternError as exc:
        raise fail(f"parameter default is a bad regular expression: {exc}", "param") from None


def _check_controls(rule: RuleModel, path: list[str | int], doc: YamlDocument) -> None:
    """Control ids must exist in the framework catalogues (when catalogues are installed)."""
    try:
        from audit.frameworks import unknown_controls
    except ImportError:
        return
    unknown = unknown_controls(_controls(rule.controls))
    if unknown:
        where = [*path, "controls"]
        raise PolicyError(
            f"{format_path(where)}: unknown control id(s): {', '.join(unknown)}",
            source=doc.source,
            line=doc.line_of(where),
        )


def _controls(raw: Mapping[str, str | list[str]]) -> dict[str, tuple[str, ...]]:
    return {
        fw: (ids,) if isinstance(ids, str) else tuple(str(i) for i in ids)
        for fw, ids in raw.items()
    }


def _compile(model: PolicyModel, source: str, warnings: tuple[str, ...] = ()) -> Policy:
    rules = tuple(_compile_rule(rule, model.policy) for rule in model.rules)
    return Policy(
        name=model.policy,
        title=model.title,
        version=model.version,
        source=source,
        rules=rules,
        params={name: spec.default for name, spec in model.params.items()},
        param_docs={name: spec.description for name, spec in model.params.items()},
        description=model.description,
        warnings=warnings,
    )


def _compile_rule(rule: RuleModel, policy: str) -> Rule:
    where = to_condition(rule.where) if rule.where is not None else None
    expect = to_condition(rule.expect)
    return Rule(
        id=rule.id,
        policy=policy,
        title=rule.title,
        resource=rule.resource,
        where=where,
        expect=expect,
        severity=rule.severity,
        remediation=rule.remediation or "",
        controls=_controls(rule.controls),
        description=rule.description,
        reads=referenced_facts(expect) | referenced_facts(where),
        where_reads=referenced_facts(where),
        translations=_translations(rule),
        references=tuple(_reference(item) for item in rule.references),
        context=tuple(rule.context),
        declared=Declaration(**rule.declared.model_dump()) if rule.declared else None,
        same_as=tuple(dict.fromkeys(rule.same_as)),
        message=rule.message.en if rule.message else "",
    )


def _translations(rule: RuleModel) -> dict[str, Translation]:
    """Every language's texts of a rule: the ``translations`` block, and French from the
    ``title_fr``, ``remediation_fr`` and ``message.fr`` shorthands (which win)."""
    texts = {
        lang: Translation(t.title or "", t.remediation or "", t.message or "")
        for lang, t in rule.translations.items()
    }
    french = texts.get("fr", Translation())
    french = Translation(
        rule.title_fr or french.title,
        rule.remediation_fr or french.remediation,
        (rule.message.fr if rule.message else None) or french.message,
    )
    if french != Translation():
        texts["fr"] = french
    return dict(sorted(texts.items()))


def _reference(item: str | ReferenceModel) -> Reference:
    if isinstance(item, str):
        return Reference(document=item, url=item if item.startswith("https://") else None)
    return Reference(item.document, item.version, item.section, item.url, item.note)


def to_condition(model: Any) -> Condition:
    """Turn a validated condition model into the evaluator's dataclasses."""
    if isinstance(model, LeafModel):
        return Leaf(model.key, model.op, model.value, model.param)
    if isinstance(model, AllModel):
        return AllOf(tuple(to_condition(c) for c in model.all))
    if isinstance(model, AnyModel):
        return AnyOf(tuple(to_condition(c) for c in model.any))
    if isinstance(model, NotModel):
        return Not(to_condition(model.not_))
    return Each(model.each.key, to_condition(model.each.expect))
