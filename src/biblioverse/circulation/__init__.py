"""Circulation: the rule matrix, loans, holds, transits, fees, notices."""

from biblioverse.circulation.errors import RuleNotFound
from biblioverse.circulation.models import CirculationRule
from biblioverse.circulation.rules import NoRule, PickupPolicy, Policy, Rule, due_at, resolve
from biblioverse.circulation.service import Applied, RuleInput, explain, matrix, save_rule

__all__ = [
    "Applied",
    "CirculationRule",
    "NoRule",
    "PickupPolicy",
    "Policy",
    "Rule",
    "RuleInput",
    "RuleNotFound",
    "due_at",
    "explain",
    "matrix",
    "resolve",
    "save_rule",
]
