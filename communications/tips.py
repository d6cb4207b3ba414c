"""The "Did you know…" line a message may end with (`{{ tip }}`, for the kinds in constants.TIP_KINDS): picked from
the program team's pool (models.Tip) for the member's role and language and, when the event names one (a notice's
`product_line` variable, a product line's code), its product line. The most specific tips win (product line, then
role); among those the pick rotates over members and events, and one event always shows the same tip on every
channel (and on a retry)."""

import zlib
from functools import partial

from communications.models import Tip
from loyalty.common.links import absolute_url


class TipPicker:
    """One notify_many's tips: the active pool is read once, and only if a template shows a tip."""

    def __init__(self):
        self._pool: list[Tip] | None = None

    def lazy_tip(self, *, member, source_key: str, product_line: str = "") -> partial:
        """The template variable: a callable, so the pool is only read when a template uses `{{ tip }}`."""
        return partial(
            self.tip,
            member_id=member.pk,
            role_id=member.role_id,
            language=member.language,
            source_key=source_key,
            product_line=product_line or "",
        )

    def tip(self, *, member_id: int, role_id: int | None, language: str, source_key: str, product_line: str) -> str:
        """The tip's text and its link (absolute), or "" when the pool has none for this member."""
        fitting = [
            tip
            for tip in self._active()
            if tip.role_id in (None, role_id)
            and tip.language in ("", language)
            and tip.product_line in ("", product_line)
        ]
        if not fitting:
            return ""
        best = max(_specificity(tip) for tip in fitting)
        candidates = [tip for tip in fitting if _specificity(tip) == best]
        chosen = candidates[(member_id + zlib.crc32(source_key.encode())) % len(candidates)]
        return f"{chosen.text} {absolute_url(chosen.link_path)}" if chosen.link_path else chosen.text

    def _active(self) -> list[Tip]:
        if self._pool is None:
            self._pool = list(Tip.objects.filter(active=True).order_by("pk"))
        return self._pool


def _specificity(tip: Tip) -> tuple[bool, bool]:
    # A tip about the event's product line beats a general one; one for the member's role beats one for anyone.
    return (tip.product_line != "", tip.role_id is not None)
