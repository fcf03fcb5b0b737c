"""Circulation: the rule matrix, loans, holds, transits, fees, notices."""
