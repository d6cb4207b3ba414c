from django.db import models


class ErrorCode(models.TextChoices):
    """Why communications refused something (forms and the API map codes, not wording)."""

    NOT_RESENDABLE = "not_resendable", "Only failed, bounced or suppressed e-mail and SMS messages can be sent again"
