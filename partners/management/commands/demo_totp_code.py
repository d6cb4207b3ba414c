"""`manage.py demo_totp_code`: the code the demo staff logins' authenticator app shows now (partners.demo)."""

import time

from allauth.mfa import app_settings as mfa_settings
from django.core.management.base import BaseCommand

from partners.demo import DEMO_TOTP_SECRET
from partners.security import totp_code


class Command(BaseCommand):
    help = (
        "Print the two-factor code the demo program and account managers sign in with right now (the demo "
        f"authenticator app's secret is {DEMO_TOTP_SECRET}). Needs no database."
    )
    requires_system_checks = []

    def handle(self, *args, **options):
        left = mfa_settings.TOTP_PERIOD - int(time.time()) % mfa_settings.TOTP_PERIOD
        self.stdout.write(f"{totp_code(DEMO_TOTP_SECRET)}  (changes in {left} s; each code signs in once)")
