"""The program core's models: the ledger (ledger.py), products and tiers (catalog.py), incentive rules (rules.py)."""

from .catalog import PartnerTier, Product, ProductLine, Tier, TierChange
from .ledger import PointsAccount, PointsAdjustment, PointsAllocation, PointsEntry, PointsLot, Program
from .rules import IncentiveRule, RuleUsage

__all__ = [
    "IncentiveRule",
    "PartnerTier",
    "PointsAccount",
    "PointsAdjustment",
    "PointsAllocation",
    "PointsEntry",
    "PointsLot",
    "Product",
    "ProductLine",
    "Program",
    "RuleUsage",
    "Tier",
    "TierChange",
]
