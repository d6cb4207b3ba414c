from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"

    def ready(self):
        from communications.hooks import REDEEMED, provides_activity
        from partners import hooks
        from rewards.activity import members_who_redeemed
        from rewards.next_steps import decide_steps, redeem_steps

        hooks.provides_next_steps(decide_steps)
        hooks.provides_next_steps(redeem_steps)
        provides_activity(REDEEMED, members_who_redeemed)
