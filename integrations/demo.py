"""The demo's integration (`manage.py seed_demo`): the demo ERP as a machine client of the API, with a key that
`make run` prints, so that a newcomer can post a sale and read a balance in a minute (README, "Try the API").

The key is fixed, like the demo passwords: anyone who reads this file knows it. It exists only where the demo was
loaded, which production never does."""

import hashlib

from integrations.constants import Scope
from integrations.models import ApiClient, ApiKey
from loyalty.models import Program, SalesSource
from partners.models import User

DEMO_CLIENT_NAME = "Demo ERP"
DEMO_KEY_PREFIX = "demo0erp0key"
DEMO_KEY_SECRET = "demo-loyalty-2026-api-key-not-for-production"
DEMO_API_KEY = f"plk_{DEMO_KEY_PREFIX}_{DEMO_KEY_SECRET}"


def seed_demo_integration(*, program_slug: str, source_code: str, registered_by_email: str) -> bool:
    """The demo ERP's client (every scope, the demo's sell-out source) and its key; False (one query) if there."""
    if ApiClient.objects.filter(program__slug=program_slug, name=DEMO_CLIENT_NAME).exists():
        return False
    program = Program.objects.get(slug=program_slug)
    sales_source = SalesSource.objects.get(program=program, code=source_code)
    registered_by = User.objects.get(email=registered_by_email)
    client = ApiClient.objects.create(
        name=DEMO_CLIENT_NAME,
        program=program,
        scopes=list(Scope.values),
        sales_source=sales_source,
        created_by=registered_by,
    )
    ApiKey.objects.create(
        client=client,
        prefix=DEMO_KEY_PREFIX,
        secret_hash=hashlib.sha256(DEMO_KEY_SECRET.encode()).hexdigest(),
        created_by=registered_by,
    )
    return True
