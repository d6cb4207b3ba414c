"""The entry points that serve (WSGI, ASGI, Celery workers) refuse to start half-configured.

`python -m loyalty.startup` (`make production-check`) lists what they would refuse, without serving anything.
"""

import os
import sys

import django
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.exceptions import ImproperlyConfigured

# What collectstatic leaves out too (its default --ignore patterns).
STATIC_IGNORE_PATTERNS = ["CVS", ".*", "*~"]


def serving_problems(*, pages: bool = True) -> list[str]:
    """Why this configuration cannot serve; `pages=False` for a worker, which renders no page."""
    problems = list(settings.STARTUP_PROBLEMS)
    if pages:
        problems += _static_problems()
    return problems


def require_serving_configuration(*, pages: bool = True) -> None:
    if problems := serving_problems(pages=pages):
        raise ImproperlyConfigured(" ".join(problems))


def _static_problems() -> list[str]:
    # In production pages name static files by the hashed names in collectstatic's manifest: a file missing
    # from it (collectstatic never run, or not run since an upgrade) is a server error on every page using it.
    if not isinstance(staticfiles_storage, ManifestFilesMixin):
        return []
    found = {path for finder in finders.get_finders() for path, _ in finder.list(STATIC_IGNORE_PATTERNS)}
    missing = sorted(found - staticfiles_storage.hashed_files.keys())
    if not missing:
        return []
    return [
        f"{len(missing)} static files (e.g. {missing[0]}) are not collected into STATIC_ROOT "
        f"({settings.STATIC_ROOT}): run `python manage.py collectstatic --noinput`."
    ]


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    django.setup()
    problems = serving_problems()
    for problem in problems:
        print(f"Cannot serve: {problem}", file=sys.stderr)
    if not problems:
        print("The configuration can serve.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
