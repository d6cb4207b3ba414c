from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Program"

    def ready(self):
        from partners import hooks

        from .services.leavers import apply_leaver_policy

        hooks.on_member_left(apply_leaver_policy)
