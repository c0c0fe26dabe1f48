"""docs/method-reference.md against the code, as test_docs.py holds docs/hooks.md to the hookspecs:
every attribute and overridable method of ``EnrolMethod``, every name ``enrolkit`` and
``enrolkit.testing`` export, every error and field type has a section whose first block is its
exact signature, and no section documents something the code lacks. Adding a member to
``EnrolMethod`` without documenting it fails here."""

from __future__ import annotations

import importlib
import inspect
import json
import re
from dataclasses import is_dataclass
from pathlib import Path

import pytest
from _pytest.fixtures import FixtureFunctionDefinition
from enrolkit import EnrolMethod

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "method-reference.md"

#: ``## `dotted.target` `` then its ``### name`` sections.
PART = re.compile(r"^## `(?P<target>[\w.]+)`\n(?P<body>.*?)(?=^## |\Z)", re.M | re.S)
SECTION = re.compile(r"^### (?P<name>\w+)\n(?P<body>.*?)(?=^#{2,3} |\Z)", re.M | re.S)
SIGNATURE = re.compile(r"\A\s*```python\n(?P<signature>.+?)\n```", re.S)
SIMPLE = (str, int, float, bool, tuple, frozenset, type(None))


def resolve(target: str):
    """A module, or an attribute of one (``enrolkit.EnrolMethod``)."""
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError:
        module, _, name = target.rpartition(".")
        return getattr(importlib.import_module(module), name)


def documented() -> dict[str, dict[str, str]]:
    """Target -> {name -> section body}, in document order."""
    text = REFERENCE.read_text(encoding="utf-8")
    return {
        part["target"]: {s["name"]: s["body"] for s in SECTION.finditer(part["body"])}
        for part in PART.finditer(text)
    }


def literal(value) -> str:
    """A default as ruff formats it in the page's code blocks (double quotes)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple):
        items = ", ".join(literal(item) for item in value)
        return f"({items},)" if len(value) == 1 else f"({items})"
    return repr(value)


def _parameters(signature: inspect.Signature, skip_self: bool) -> str:
    out, star_done = [], False
    params = list(signature.parameters.values())
    if skip_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    for param in params:
        text = param.name
        if param.kind is param.VAR_POSITIONAL:
            text, star_done = f"*{param.name}", True
        elif param.kind is param.VAR_KEYWORD:
            text = f"**{param.name}"
        elif param.kind is param.KEYWORD_ONLY and not star_done:
            out.append("*")
            star_done = True
        if param.annotation is not inspect.Parameter.empty:
            text += f": {param.annotation}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {literal(param.default)}"
        out.append(text)
    return ", ".join(out)


def signature_of(owner, name: str) -> str:
    """The first line a section must show for ``owner.name``, with annotations as written."""
    if isinstance(owner, type):
        raw = inspect.getattr_static(owner, name, None)
        annotations = inspect.get_annotations(owner)
        if name in annotations:
            text = f"{name}: {annotations[name]}"
            if name in vars(owner):
                text += f" = {literal(vars(owner)[name])}"
            return text
        if isinstance(raw, property):
            hint = inspect.signature(raw.fget).return_annotation
            return f"{name}: {hint}  # property"
        value = getattr(owner, name)
        return f"{name}({_parameters(inspect.signature(value), skip_self=True)})" + _returns(value)
    value = getattr(owner, name)
    if isinstance(value, FixtureFunctionDefinition):
        return f"{name}  # fixture"
    if isinstance(value, type):
        if "__init__" not in vars(value) and not is_dataclass(value):
            base = value.__bases__[0]
            return f"class {name}({'' if base is object else base.__name__})"
        try:
            return f"class {name}({_parameters(inspect.signature(value), skip_self=False)})"
        except ValueError:  # an exception class: no Python constructor, so its base
            return f"class {name}({value.__bases__[0].__name__})"
    if inspect.isfunction(value):
        return f"{name}({_parameters(inspect.signature(value), skip_self=False)})" + _returns(value)
    if isinstance(value, SIMPLE):
        return f"{name} = {literal(value)}"
    return f"{name}: {type(value).__name__}"


def _returns(function) -> str:
    hint = inspect.signature(function).return_annotation
    return "" if hint is inspect.Signature.empty else f" -> {hint}"


def required(target: str, owner) -> list[str]:
    """What a part must document in full: every member of ``EnrolMethod``, every name that
    ``enrolkit`` and ``enrolkit.testing`` export, every error and field type. Other parts
    (templating, mail, ...) document the helpers a method uses, checked name by name."""
    if owner is EnrolMethod:
        return [
            *inspect.get_annotations(EnrolMethod),
            *(n for n in vars(EnrolMethod) if not n.startswith("_") and n not in ("name",)),
        ]
    if target in ("enrolkit", "enrolkit.testing"):
        return list(owner.__all__)
    if target in ("enrolkit.errors", "enrolkit.fields"):
        return [
            name
            for name, value in vars(owner).items()
            if isinstance(value, type) and value.__module__ == target and not name.startswith("_")
        ]
    return []


def test_the_reference_covers_the_contract_and_its_helpers():
    parts = documented()
    assert {
        "enrolkit.EnrolMethod",
        "enrolkit",
        "enrolkit.fields",
        "enrolkit.errors",
        "enrolkit.testing",
        "enrolkit.templating",
        "enrolkit.mail",
        "enrolkit.welcome",
        "enrolkit.cli.output",
        "enrolkit.enrolments",
    } <= set(parts)


@pytest.mark.parametrize("target", list(documented()))
def test_each_part_documents_every_name_with_its_exact_signature(target):
    owner = resolve(target)
    sections = documented()[target]
    problems = []
    for name in dict.fromkeys(required(target, owner)):
        if name not in sections:
            problems.append(f"{name}: no '### {name}' section; it is {signature_of(owner, name)}")
    for name, body in sections.items():
        if not hasattr(owner, name) and name not in inspect.get_annotations(owner):
            problems.append(f"{name}: documented, but {target} has no {name}")
            continue
        expected = signature_of(owner, name)
        match = SIGNATURE.match(body)
        if not match:
            problems.append(f"{name}: the section must start with a python block: {expected}")
        elif match["signature"].strip() != expected:
            problems.append(f"{name}: documented {match['signature'].strip()!r}, is {expected!r}")
    assert not problems, f"docs/method-reference.md, {target}:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "name", [n for n in vars(EnrolMethod) if inspect.isfunction(vars(EnrolMethod)[n])]
)
def test_each_overridable_method_says_who_calls_it_and_what_it_returns(name):
    body = documented()["enrolkit.EnrolMethod"].get(name, "")
    assert re.search(r"^\*\*Called:\*\* \S", body, re.M), f"{name}: needs a '**Called:**' line"
    assert re.search(r"^\*\*Returns:\*\* \S", body, re.M), f"{name}: needs a '**Returns:**' line"


def test_the_signature_renderer_shows_annotations_defaults_and_keyword_markers():
    from enrolkit import mail

    assert signature_of(EnrolMethod, "sync") == (
        "sync(site: Site, instance: EnrolInstance) -> Plan | None"
    )
    assert signature_of(EnrolMethod, "multiple_instances") == (
        "multiple_instances: ClassVar[bool] = True"
    )
    assert signature_of(mail, "queue").startswith("queue(site: Site, *, to: str, subject: str")
