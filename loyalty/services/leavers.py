"""What happens to a person's points when they leave a partner, per each program's leaver policy."""

from loyalty.constants import EntrySource, LeaverPolicy
from loyalty.models import PointsAccount, PointsLot
from loyalty.services import ledger


def apply_leaver_policy(*, member, actor=None) -> None:
    """Keep, forfeit or move to the company account the points of every program the member has.
    Runs inside the transaction that marks the member as left; every step is idempotent."""
    accounts = PointsAccount.objects.select_related("program").filter(member=member)
    for account in accounts:
        policy = account.program.leaver_policy
        if policy == LeaverPolicy.KEEP:
            continue
        reason = f"{member.user} left {member.partner}"
        company = None
        if policy == LeaverPolicy.TRANSFER:
            company = ledger.partner_account(program=account.program, partner=member.partner)
        # Pending points: take them off the member; under TRANSFER they stay pending on the company account.
        for lot in PointsLot.objects.filter(account=account, is_pending=True, remaining__gt=0).select_related("entry"):
            ledger.reverse(
                entry=lot.entry, key=f"leaver:{member.pk}:pending:{lot.pk}", points=lot.remaining, explanation=reason
            )
            if company is not None:
                ledger.earn(
                    account=company,
                    points=lot.remaining,
                    key=f"leaver:{member.pk}:pending-in:{lot.pk}",
                    source_type=EntrySource.LEAVER,
                    source_id=str(member.pk),
                    explanation=f"Pending points of {member.user}, who left",
                    available_at=lot.available_at,
                    earned_at=lot.entry.created_at,
                    created_by=actor,
                )
        account.refresh_from_db()
        if account.available == 0:
            continue
        if company is not None:
            ledger.transfer(
                source=account,
                target=company,
                points=account.available,
                key=f"leaver:{member.pk}:{account.pk}",
                explanation=f"{reason}: points moved to the company account",
                source_type=EntrySource.LEAVER,
                source_id=str(member.pk),
                created_by=actor,
            )
        else:
            ledger.adjust(
                account=account,
                points=-account.available,
                key=f"leaver:{member.pk}:{account.pk}",
                reason=f"{reason}: points forfeited under the program rules",
                created_by=actor,
                source_id=str(member.pk),
            )
