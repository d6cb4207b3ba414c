from django.apps import AppConfig


class RewardsConfig(AppConfig):
    name = "rewards"

    def ready(self):
        from partners import hooks
        from rewards.next_steps import decide_steps, redeem_steps

        hooks.provides_next_steps(decide_steps)
        hooks.provides_next_steps(redeem_steps)
