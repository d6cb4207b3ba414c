from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Program"

    def ready(self):
        from loyalty.services.leavers import apply_leaver_policy
        from loyalty.views.next_steps import claim_steps
        from partners import hooks

        hooks.on_member_left(apply_leaver_policy)
        hooks.provides_next_steps(claim_steps)
        import loyalty.tasks  # noqa: F401  (registers the tasks services queue by name)
