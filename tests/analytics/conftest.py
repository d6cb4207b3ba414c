import pytest


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Claim invoices go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.PRIVATE_MEDIA_ROOT


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts without the dashboards' cached figures (analytics.figures_cache) of the tests before it."""
    from django.core.cache import cache

    cache.clear()
