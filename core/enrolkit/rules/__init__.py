"""Rules: who an auto-enrol instance (or any plugin) lets in, as a tree of conditions.

A rule is stored and exchanged as Moodle's availability JSON, so a filter copied from a Moodle
enrol_autoenrol instance works here and back::

    {"op": "&", "showc": [true, true], "c": [
        {"type": "profile", "sf": "department", "op": "isequalto", "v": "Sales"},
        {"op": "|", "c": [{"type": "badge", "id": "First aid"},
                          {"type": "cohort", "id": "staff"}]}]}

Semantics (Moodle's, ``availability/classes/tree.php``):

* ``op`` is ``&`` (all of), ``|`` (any of), ``!&`` (not all of: NOT of the whole AND) or ``!|``
  (none of: NOT of the whole OR). ``show``/``showc`` steer Moodle's display only: accepted
  anywhere and ignored; :meth:`Rule.to_json` writes the root's back, all true.
* The empty rule (None, blank text, ``{}``, or a root with ``"c": []`` whatever its ``op``)
  matches everyone. An empty *nested* group is refused: Moodle would count it as passed even
  under a negation, which nobody means.
* Unknown condition types, unknown keys and bad values are refused at parse time with the JSON
  path of the node (``c[1].c[0].op: unknown operator 'foo'``); Moodle silently drops unknown types
  when reading, which here would widen a rule unnoticed.
* Names that do not exist on the site (a badge, course, cohort or custom profile field) parse
  fine (:meth:`Rule.problems` lists them for a save-time warning); such a condition is false for
  everyone, so its negation is true.

Condition types come from the ``register_conditions`` hook (``site.plugins.conditions``); the
built-in ones live in :mod:`enrolkit.rules.standard`. Each evaluates for one user in Python
(:meth:`Rule.matches`, a few queries whatever the rule's size), compiles to one SQL condition over
``users`` (:meth:`Rule.sql`, a whole site in one query) and explains itself
(:meth:`Rule.explain`). :meth:`Rule.prefilter` gives the profile-field equalities every match
must have, so a login can skip rules that cannot match before evaluating any.
"""

from .condition import ConditionType, JsonPath, RuleError, SqlContext, UserContext
from .explain import Explanation
from .tree import Rule, parse

__all__ = [
    "ConditionType",
    "Explanation",
    "JsonPath",
    "Rule",
    "RuleError",
    "SqlContext",
    "UserContext",
    "parse",
]
