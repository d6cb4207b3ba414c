from pathlib import Path

import pytest


@pytest.fixture
def private_media(settings, tmp_path) -> Path:
    """The test's own folders for uploaded and generated files, so "no file written" can be checked: returns the
    private one (invoices, import files and their error reports)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    return settings.PRIVATE_MEDIA_ROOT
