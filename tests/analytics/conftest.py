import pytest


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    """Claim invoices go to the test's own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.PRIVATE_MEDIA_ROOT
