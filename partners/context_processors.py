from partners.constants import MemberStatus, PartnerStatus, PayoutPolicy
from partners.visibility import viewer_for

# The colour of each status's badge (templates/includes/*_status_badge.html). Every status has one.
MEMBER_STATUS_BADGES = {
    MemberStatus.INVITED: "text-bg-info",
    MemberStatus.PENDING_APPROVAL: "text-bg-warning",
    MemberStatus.ACTIVE: "text-bg-success",
    MemberStatus.LEFT: "text-bg-secondary",
}
PARTNER_STATUS_BADGES = {
    PartnerStatus.PROSPECT: "text-bg-info",
    PartnerStatus.ACTIVE: "text-bg-success",
    PartnerStatus.SUSPENDED: "text-bg-warning",
    PartnerStatus.CLOSED: "text-bg-secondary",
}


def viewer(request):
    """Who is looking at the page (a partners.visibility.Viewer, the same one the view used), and the partners
    statuses templates compare with (`member.status == MemberStatus.ACTIVE`, never a string)."""
    return {
        "viewer": viewer_for(getattr(request, "user", None)),
        "MemberStatus": MemberStatus,
        "PartnerStatus": PartnerStatus,
        "PayoutPolicy": PayoutPolicy,
        "MEMBER_STATUS_BADGES": MEMBER_STATUS_BADGES,
        "PARTNER_STATUS_BADGES": PARTNER_STATUS_BADGES,
    }
