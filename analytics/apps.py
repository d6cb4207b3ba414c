from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from analytics.views_dashboards import member_columns, progress_panel
        from partners import hooks

        # What each person earned, their balance, last activity and training, in the tables of a partner's people.
        hooks.provides_member_columns(member_columns)
        # The home page's way to a member's own progress.
        hooks.provides_home_panels(progress_panel)
        import analytics.tasks  # noqa: F401  (registers the tasks queued by name: exports, reports)
