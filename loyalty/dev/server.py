"""`make run`: migrate, load the demo program, print where to go and who to be, then serve."""

import argparse
import os
import sys

import django


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings")
    django.setup()
    from django.core.management import call_command

    from partners.demo import DEMO_PASSWORD, demo_logins

    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", verbosity=1)

    base = f"http://127.0.0.1:{args.port}"
    logins = demo_logins()
    width = max(len(email) for _, email in logins)
    print(f"\nPartner Loyalty is running.\n\n  Member site:  {base}/\n  Back office:  {base}/admin/\n")
    print(f"  {'who':<22} {'e-mail':<{width}}  password")
    for who, email in logins:
        print(f"  {who:<22} {email:<{width}}  {DEMO_PASSWORD}")
    print("\nStop with Ctrl-C; the data is kept for the next `make run`.\n", flush=True)
    os.execv(sys.executable, [sys.executable, "manage.py", "runserver", f"127.0.0.1:{args.port}", "--noreload"])


if __name__ == "__main__":
    sys.exit(main())
