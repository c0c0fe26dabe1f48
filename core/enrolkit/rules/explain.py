"""Why a user matches a rule or not, condition by condition, as indented text or JSON."""

from __future__ import annotations

from dataclasses import dataclass

from ..texts import Text

#: How each group operator reads in an explanation.
GROUP_LABELS = {
    "&": Text("all of these"),
    "|": Text("any of these"),
    "!&": Text("not all of these"),
    "!|": Text("none of these"),
}

GROUP = "group"


@dataclass(frozen=True)
class Explanation:
    """One node's result. A group's ``passed`` already includes its own negation (``!&``,
    ``!|``); a condition's ``passed`` is the condition alone."""

    passed: bool
    #: ``"group"`` or the condition's type.
    type: str
    #: For a group, how its operator reads ("none of these"); for a condition, the reason.
    summary: str
    #: The node's JSON path ('' for the whole rule).
    path: str
    #: The group operator, None for a condition.
    op: str | None = None
    children: tuple[Explanation, ...] = ()

    def text(self, indent: int = 0) -> str:
        """Indented lines, one per node: ``[pass] department is 'IT'``."""
        mark = "[pass]" if self.passed else "[fail]"
        label = f"{self.summary}:" if self.children else self.summary
        lines = [f"{'  ' * indent}{mark} {label}"]
        lines.extend(child.text(indent + 1) for child in self.children)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def to_json(self) -> dict:
        """The same tree as plain data, for ``--json`` and the API."""
        data: dict = {"passed": self.passed, "type": self.type, "path": self.path}
        if self.type == GROUP:
            data["op"] = self.op
            data["summary"] = self.summary
            data["children"] = [child.to_json() for child in self.children]
        else:
            data["reason"] = self.summary
        return data
