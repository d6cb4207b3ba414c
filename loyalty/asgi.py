import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")

application = get_asgi_application()

from loyalty.startup import require_serving_configuration  # noqa: E402 (needs the settings loaded above)

require_serving_configuration()
