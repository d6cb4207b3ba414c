"""Prize draws, verifiable by anyone: before entries close the draw publishes the SHA-256 of its secret seed and,
at the close, of the entry list; after the draw it reveals the seed, and the winners follow from seed and entries
by a published procedure (loyalty.services.draws), which the verification page re-runs. Members get entries by
activity, buy them with points (spent through the ledger), or — where their region requires it — enter free with
equal odds."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from loyalty.common.models import TimeStampedModel
from loyalty.constants import DrawStatus, EntrySourceKind


class PrizeDraw(TimeStampedModel):
    program = models.ForeignKey("loyalty.Program", on_delete=models.PROTECT, related_name="draws")
    name = models.CharField(_("name"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    prizes = models.TextField(_("prizes"), help_text=_("One prize per line, the first for the first winner."))
    opens_at = models.DateTimeField(_("entries open"))
    closes_at = models.DateTimeField(_("entries close"))
    entry_price_points = models.PositiveIntegerField(
        _("price of one entry (points)"), null=True, blank=True, help_text=_("Empty: entries cannot be bought.")
    )
    max_entries_per_member = models.PositiveIntegerField(_("most entries per member"), default=10)
    # Entries earned by activity: one per this many points earned by rules in the window (empty: none).
    points_per_activity_entry = models.PositiveIntegerField(_("points per earned entry"), null=True, blank=True)
    status = models.CharField(max_length=10, choices=DrawStatus.choices, default=DrawStatus.DRAFT)
    seed_hash = models.CharField(max_length=64, blank=True, help_text=_("SHA-256 of the secret seed, published."))
    entries_hash = models.CharField(max_length=64, blank=True, help_text=_("SHA-256 of the entry list at the close."))
    seed = models.CharField(max_length=64, blank=True, help_text=_("Revealed after the draw."))
    drawn_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["program", "-closes_at"]
        verbose_name = _("prize draw")
        verbose_name_plural = _("prize draws")
        constraints = [
            models.CheckConstraint(condition=Q(closes_at__gt=models.F("opens_at")), name="draw_closes_after_open"),
            models.CheckConstraint(condition=Q(status__in=DrawStatus.values), name="draw_status_valid"),
        ]

    def __str__(self):
        return self.name


class DrawEntry(models.Model):
    """Entries of one member from one source (a purchase, the free entry, the activity in the window)."""

    draw = models.ForeignKey(PrizeDraw, on_delete=models.PROTECT, related_name="entries")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, choices=EntrySourceKind.choices)
    count = models.PositiveIntegerField(default=1)
    key = models.CharField(max_length=120, unique=True, help_text=_("One purchase, free entry or activity grant."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["draw", "id"]
        verbose_name = _("draw entry")
        verbose_name_plural = _("draw entries")
        constraints = [
            models.CheckConstraint(condition=Q(count__gte=1), name="draw_entry_count_positive"),
            models.UniqueConstraint(
                fields=["draw", "member"], condition=Q(source=EntrySourceKind.FREE), name="draw_one_free_entry"
            ),
        ]

    def __str__(self):
        return f"{self.draw} · {self.member}: {self.count}"


class DrawWinner(models.Model):
    draw = models.ForeignKey(PrizeDraw, on_delete=models.PROTECT, related_name="winners")
    member = models.ForeignKey("partners.Member", on_delete=models.PROTECT, related_name="+")
    rank = models.PositiveSmallIntegerField()
    prize = models.CharField(max_length=300)

    class Meta:
        ordering = ["draw", "rank"]
        verbose_name = _("draw winner")
        verbose_name_plural = _("draw winners")
        constraints = [
            models.UniqueConstraint(fields=["draw", "rank"], name="draw_winner_rank_unique"),
            models.UniqueConstraint(fields=["draw", "member"], name="draw_winner_once"),
        ]

    def __str__(self):
        return f"{self.draw} #{self.rank}: {self.member}"
