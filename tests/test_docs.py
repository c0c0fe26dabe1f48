"""The hook reference (docs/hooks.md) against the specs in hookspecs.py, and every hook against
the test suite, so that neither the documentation nor the tests can fall behind a new hook."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from enrolkit import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS_MD = ROOT / "docs" / "hooks.md"

#: One hook section: ``### name``, a blank line, then a python block holding the signature.
SECTION = re.compile(r"^### (?P<name>\w+)\n(?P<body>.*?)(?=^#{2,3} |\Z)", re.M | re.S)
SIGNATURE = re.compile(r"\A\s*```python\n(?P<signature>.+?)\n```", re.S)
FIRSTRESULT = re.compile(r"^\*\*firstresult:\*\* (?P<value>yes|no)\b", re.M)


def specs() -> dict[str, object]:
    """Every hookspec, in the order hookspecs.py defines them."""
    return {
        name: fn
        for name, fn in vars(hookspecs).items()
        if inspect.isfunction(fn) and hasattr(fn, "enrolkit_spec")
    }


def spec_signature(name: str, fn) -> str:
    """``name(arg: Type, ...) -> Return`` with the annotations as written in hookspecs.py."""
    signature = inspect.signature(fn)
    params = []
    for param in signature.parameters.values():
        text = f"{param.name}: {param.annotation}"
        if param.default is not inspect.Parameter.empty:
            text += f" = {param.default!r}"
        params.append(text)
    return f"{name}({', '.join(params)}) -> {signature.return_annotation}"


def documented() -> dict[str, str]:
    """Hook name -> the body of its section in docs/hooks.md, in document order."""
    return {m["name"]: m["body"] for m in SECTION.finditer(HOOKS_MD.read_text(encoding="utf-8"))}


def test_hookspecs_are_found_with_string_annotations():
    found = specs()
    assert {"on_login", "on_course_view", "on_cron", "on_completion", "render_settings"} <= set(
        found
    )
    assert spec_signature("on_login", found["on_login"]) == (
        "on_login(site: Site, user: User) -> None"
    )


def test_every_hook_is_documented_with_its_exact_signature():
    docs = documented()
    problems = []
    for name, fn in specs().items():
        expected = spec_signature(name, fn)
        if name not in docs:
            problems.append(f"{name}: no '### {name}' section; expected signature {expected}")
            continue
        match = SIGNATURE.match(docs[name])
        if not match:
            problems.append(f"{name}: the section must start with a python block: {expected}")
        elif match["signature"].strip() != expected:
            problems.append(
                f"{name}: documented {match['signature'].strip()!r}, spec is {expected!r}"
            )
    assert not problems, "docs/hooks.md is out of step with hookspecs.py:\n" + "\n".join(problems)


def test_docs_describe_no_hook_that_does_not_exist():
    stale = sorted(set(documented()) - set(specs()))
    assert not stale, f"docs/hooks.md documents hooks that hookspecs.py lacks: {stale}"


def test_docs_follow_the_order_of_hookspecs():
    assert [n for n in documented() if n in specs()] == [n for n in specs() if n in documented()]


@pytest.mark.parametrize("name", list(specs()))
def test_each_hook_section_states_firstresult_and_every_argument(name):
    body = documented().get(name)
    if body is None:
        pytest.fail(f"{name} is not documented in docs/hooks.md")
    stated = FIRSTRESULT.search(body)
    assert stated, f"{name}: the section needs a '**firstresult:** yes|no' line"
    firstresult = bool(specs()[name].enrolkit_spec.get("firstresult"))
    assert (stated["value"] == "yes") == firstresult, f"{name}: firstresult is {firstresult}"
    for arg in inspect.signature(specs()[name]).parameters:
        assert re.search(rf"^- `{arg}`:", body, re.M), f"{name}: argument `{arg}` not described"


# --- every hook has a test ---------------------------------------------------------------------

TEST_FILES = sorted([*ROOT.glob("tests/**/test_*.py"), *ROOT.glob("plugins/*/tests/**/test_*.py")])


def hooks_tested_in(source: str) -> set[str]:
    """The hooks a test module proves: a test named ``test_hook_<hook>[_...]``, or an
    ``@hookimpl`` of the hook (by function name or ``specname=``) that the module registers in
    its tests, at module level, in a plugin class or inside a test. A bare mention of the name
    (a string, a call of the facade) does not count: it shows no implementation being run."""
    names = set(specs())
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        found.update(_implemented_hook(node) & names)
        if node.name.startswith("test_hook_"):
            found.update(
                hook
                for hook in names
                if node.name == f"test_hook_{hook}" or node.name.startswith(f"test_hook_{hook}_")
            )
    return found


def _implemented_hook(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    for decorator in fn.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = getattr(target, "attr", None) or getattr(target, "id", None)
        if name != "hookimpl":
            continue
        for keyword in getattr(decorator, "keywords", ()):
            if keyword.arg == "specname" and isinstance(keyword.value, ast.Constant):
                return {keyword.value.value}
        return {fn.name}
    return set()


def test_hook_test_detection_needs_a_test_name_or_an_implementation():
    source = """
import enrolkit
from enrolkit import hookimpl

@hookimpl
def on_cron(now):
    pass

def test_mentions_only(site):
    assert "on_login" and "profile_changed"
    site.plugins.cohort_deleted(site=site, cohort_id=1)

def on_completion(site):  # a helper named like a hook, not an implementation
    pass

def test_hook_courses_changed_on_import():
    pass

def test_something_else():
    class Recorder:
        @enrolkit.hookimpl
        def enrolments_changed(self, changes):
            pass

    @enrolkit.hookimpl(specname="render_settings")
    def custom_form(method):
        return "<form>"
"""
    assert hooks_tested_in(source) == {
        "on_cron",
        "courses_changed",
        "enrolments_changed",
        "render_settings",
    }


def test_every_hook_has_a_test():
    tested: set[str] = set()
    for path in TEST_FILES:
        tested |= hooks_tested_in(path.read_text(encoding="utf-8"))
    missing = [name for name in specs() if name not in tested]
    assert not missing, (
        f"hooks with no test: {', '.join(missing)}. Name a test test_hook_<hook> (or "
        f"test_hook_<hook>_<what>), or implement the hook with @hookimpl in a test module "
        f"that registers it (tests/**/test_*.py or plugins/*/tests/**/test_*.py)."
    )
