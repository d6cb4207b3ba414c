"""The back office of the program core, one module per capability; importing the package registers them all."""

from loyalty.admin import catalog, claims, ledger, programs, rules, sale_lines, sellout, tiers
from loyalty.admin import challenges as challenges
from loyalty.admin import clubs as clubs
from loyalty.admin import comarketing as comarketing
from loyalty.admin import draws as draws
from loyalty.admin import referrals as referrals
from loyalty.admin import returns as returns
from loyalty.admin import training as training

__all__ = ["catalog", "claims", "ledger", "programs", "rules", "sale_lines", "sellout", "tiers"]
