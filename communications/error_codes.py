from django.db import models


class ErrorCode(models.TextChoices):
    """Why communications refused something (forms and the API map codes, not wording)."""

    NOT_RESENDABLE = "not_resendable", "Only failed, bounced or suppressed e-mail and SMS messages can be sent again"
    SURVEY_NOT_OPEN = "survey_not_open", "The survey is not open for this member"
    SURVEY_ANSWERED = "survey_answered", "The member answered the survey before"
    ANSWER_MISSING = "answer_missing", "A required question has no answer"
    ANSWER_INVALID = "answer_invalid", "An answer does not fit its question"
    FEEDBACK_PHOTO = "feedback_photo", "The feedback photo is not a photo or is too large"
    FEEDBACK_ANSWERED = "feedback_answered", "The feedback was answered before"
    CAMPAIGN_SENT = "campaign_sent", "The campaign was sent (or cancelled) before"
    CAMPAIGN_EMPTY = "campaign_empty", "No member matches the campaign's segment"
    CAMPAIGN_NO_MESSAGE = "campaign_no_message", "Some members of the audience have no message variant"
