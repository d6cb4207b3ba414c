"""`make run`: migrate, load the demo program, print where to go and who to be, then serve."""

import argparse
import os
import sys

import django


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    args = parser.parse_args()

    # The settings derive SITE_URL (every e-mailed link) from PORT unless SITE_URL is given.
    os.environ["PORT"] = str(args.port)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    django.setup()
    from django.core.management import call_command

    from integrations.demo import DEMO_API_KEY
    from loyalty.common.links import absolute_url
    from partners.demo import DEMO_PASSWORD, DEMO_TOTP_SECRET, demo_logins, ensure_demo_totp

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", verbosity=1)
    ensure_demo_totp()

    logins = demo_logins()
    width = max(len(email) for _, email in logins)
    print(
        f"\nPartner Loyalty is running.\n\n  Member site:  {absolute_url('home')}\n"
        f"  Back office:  {absolute_url('admin:index')}\n"
    )
    print(f"  {'who':<22} {'e-mail':<{width}}  password")
    for who, email in logins:
        print(f"  {who:<22} {email:<{width}}  {DEMO_PASSWORD}")
    print(
        "\n  The program and account managers also type a code from an authenticator app after the password."
        f"\n  Add the secret {DEMO_TOTP_SECRET} to one, or print the current code with:"
        "\n    .venv/bin/python manage.py demo_totp_code"
    )
    print(
        f"\n  The API: {absolute_url('api_docs')} (its docs). The demo ERP's key:\n    {DEMO_API_KEY}"
        f"\n  Try it: curl -H 'Authorization: Bearer {DEMO_API_KEY}' {absolute_url('api_me')}"
        '\n  README.md, "Try the API", posts a sale and reads the balance it paid.'
    )
    print("\nStop with Ctrl-C; the data is kept for the next `make run`.\n", flush=True)
    os.execv(sys.executable, [sys.executable, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"])


if __name__ == "__main__":
    sys.exit(main())
