"""The program core's models, one module per capability: programs, the points ledger, the product catalogue,
partner tiers, incentive rules, sales claims, sell-out imports, training and challenges. One app label (`loyalty`),
so table names and migrations are those of the app."""

from loyalty.models.catalog import Product, ProductLine
from loyalty.models.challenges import (
    Challenge,
    ChallengeEntry,
    ChallengeGoal,
    ChallengePrize,
    CountedEvent,
    PeriodStanding,
)
from loyalty.models.claims import ClaimEvent, ClaimLine, SalesClaim
from loyalty.models.clubs import ClubMembership
from loyalty.models.comarketing import MarketingFund, MarketingProof, MarketingRequest, MarketingRequestEvent
from loyalty.models.draws import DrawEntry, DrawWinner, PrizeDraw
from loyalty.models.ledger import PointsAccount, PointsAdjustment, PointsAllocation, PointsEntry, PointsLot
from loyalty.models.programs import Program
from loyalty.models.referrals import Referral, ReferralEvent
from loyalty.models.returns import CollectionPoint, EquipmentReturn, EquipmentReturnEvent, ReturnedSerial, ReturnType
from loyalty.models.rules import IncentiveRule, RuleUsage
from loyalty.models.sellout import PartnerAlias, SaleLine, SalesImport, SalesSource
from loyalty.models.tiers import PartnerTier, Tier, TierChange
from loyalty.models.training import Certificate, Course, Module, QuizAttempt, QuizChoice, QuizQuestion

__all__ = [
    "ClubMembership",
    "CollectionPoint",
    "DrawEntry",
    "DrawWinner",
    "EquipmentReturn",
    "EquipmentReturnEvent",
    "MarketingFund",
    "MarketingProof",
    "MarketingRequest",
    "MarketingRequestEvent",
    "PrizeDraw",
    "Referral",
    "ReferralEvent",
    "ReturnedSerial",
    "ReturnType",
    "Certificate",
    "Challenge",
    "ChallengeEntry",
    "ChallengeGoal",
    "ChallengePrize",
    "CountedEvent",
    "Course",
    "Module",
    "PeriodStanding",
    "QuizAttempt",
    "QuizChoice",
    "QuizQuestion",
    "ClaimEvent",
    "ClaimLine",
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
    "SaleLine",
    "SalesClaim",
    "SalesImport",
    "SalesSource",
    "Tier",
    "TierChange",
]
