from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "integrations"
    verbose_name = "Integrations"

    def ready(self):
        from django.db.models.signals import post_delete, post_migrate, post_save

        from integrations import webhooks
        from integrations.models import ApiClient, WebhookSubscription
        from loyalty.common.events import domain_event

        # The outbox: every domain event a client subscribed to becomes a webhook event and its deliveries.
        domain_event.connect(webhooks.on_domain_event, dispatch_uid="integrations.webhooks")
        # Which (program, type) pairs anyone listens to is cached: forgotten when a subscription or a client changes.
        for model in (WebhookSubscription, ApiClient):
            post_save.connect(webhooks.forget_subscribed, sender=model, dispatch_uid=f"webhooks.saved.{model.__name__}")
            post_delete.connect(
                webhooks.forget_subscribed, sender=model, dispatch_uid=f"webhooks.deleted.{model.__name__}"
            )
        # Known from the start (a deploy's migrate, a test run's database set-up): the first event costs no query.
        post_migrate.connect(webhooks.subscriptions_warm_up, sender=self, dispatch_uid="webhooks.warm_up")
        import integrations.tasks  # noqa: F401  (registers the tasks queued by name)
