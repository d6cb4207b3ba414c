from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommunicationsConfig(AppConfig):
    name = "communications"
    verbose_name = _("Communications")

    def ready(self):
        from anymail.signals import tracking

        from communications import handlers
        from communications.tracking import email_unreachable, tracking_received
        from partners import hooks

        hooks.on_member_approved(handlers.member_approved)
        hooks.on_member_left(handlers.member_left)
        hooks.on_invitation_issued(handlers.invitation_issued)
        hooks.provides_email_unreachable(email_unreachable)
        tracking.connect(tracking_received, dispatch_uid="communications.tracking")
        import communications.tasks  # noqa: F401  (registers the tasks services queue by name)
