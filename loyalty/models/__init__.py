"""The program core's models: the ledger (ledger.py), products and tiers (catalog.py), incentive rules (rules.py),
sales claims and sell-out imports (sales.py)."""

from .catalog import PartnerTier, Product, ProductLine, Tier, TierChange
from .ledger import PointsAccount, PointsAdjustment, PointsAllocation, PointsEntry, PointsLot, Program
from .rules import IncentiveRule, RuleUsage
from .sales import ClaimEvent, ClaimLine, PartnerAlias, SaleLine, SalesClaim, SalesImport, SalesSource

__all__ = [
    "ClaimEvent",
    "ClaimLine",
    "SaleLine",
    "SalesClaim",
    "SalesImport",
    "SalesSource",
    "IncentiveRule",
    "PartnerAlias",
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
