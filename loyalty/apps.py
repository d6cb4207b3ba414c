from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Program"

    def ready(self):
        from loyalty.services.leavers import apply_leaver_policy
        from partners import hooks

        hooks.on_member_left(apply_leaver_policy)
        import loyalty.tasks  # noqa: F401  (registers the tasks services queue by name)
