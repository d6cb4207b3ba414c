"""Domain events: what happened, said once by the service that made it happen, for whoever listens (the webhooks
of integrations today). The service calls `publish(...)` inside its transaction; a listener records what it needs
in that same transaction (an outbox row), so the event exists exactly when the change does. The shared kernel
holds the signal so that the domain apps need not know who listens (nobody imports integrations).

Event types and their data (ids and facts, never whole objects; all JSON):
- "points.earned": account_id, member_id (or null), partner_id, points, entry_id, source_type, source_id
- "claim.decided": claim_id, member_id, partner_id, status ("approved"/"rejected"), points, reason
- "order.status_changed": order_id, member_id, partner_id, from_status, to_status, tracking
- "tier.changed": partner_id, from_tier, to_tier (tier codes or null), move ("first", "up", "down")
- "member.joined" / "member.left": member_id, partner_id, role
- "import.finished": import_id, source_id, status, lines, new_lines, duplicate_lines, error_rows, points
"""

from django.dispatch import Signal

# Sent with event_type (str), program_id (int, or None for events of no program: a member joining a partner),
# data (dict). Receivers run inside the publishing transaction: they must be quick and must not fail.
domain_event = Signal()


def publish(event_type: str, *, program_id: int | None, data: dict) -> None:
    domain_event.send(sender=None, event_type=event_type, program_id=program_id, data=data)
