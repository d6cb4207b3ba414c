"""The back office of the program core, one module per capability; importing the package registers them all."""

from loyalty.admin import catalog, claims, ledger, programs, rules, sale_lines, sellout, tiers

__all__ = ["catalog", "claims", "ledger", "programs", "rules", "sale_lines", "sellout", "tiers"]
