import os

from celery import Celery
from celery.signals import worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _refuse_half_configured(**kwargs):
    from loyalty.startup import require_serving_configuration

    require_serving_configuration(pages=False)  # a worker renders no page: it needs no static files
