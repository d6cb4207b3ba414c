from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Program"

    def ready(self):
        from loyalty.services.leavers import apply_leaver_policy
        from loyalty.views.challenges import home_panel as challenge_panel
        from loyalty.views.next_steps import claim_steps, earning_guide_steps
        from partners import hooks

        hooks.on_member_left(apply_leaver_policy)
        hooks.provides_next_steps(claim_steps)
        hooks.provides_next_steps(earning_guide_steps)
        hooks.provides_home_panels(challenge_panel)
        _provide_activity()
        _provide_surveys()
        import loyalty.tasks  # noqa: F401  (registers the tasks services queue by name)


def _provide_activity() -> None:
    """What members earned and claimed, and the partners' tiers, for communications' campaign segments and reach."""
    from communications import hooks
    from loyalty.services import activity

    hooks.provides_activity(hooks.EARNED, activity.members_who_earned)
    hooks.provides_activity(hooks.CLAIMED, activity.members_who_claimed)
    hooks.provides_tier_partners(activity.partners_in_tiers)


def _provide_surveys() -> None:
    """The points for answering a survey, and the partners' tiers for its results."""
    from communications import hooks
    from loyalty.services import survey_points

    hooks.on_survey_answered(survey_points.survey_answered)
    hooks.provides_tier_names(survey_points.partner_tier_names)
    hooks.provides_survey_points(hooks.OFFERED, survey_points.survey_points_offered)
    hooks.provides_survey_points(hooks.PAID, survey_points.survey_points_paid)
