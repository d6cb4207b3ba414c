"""Settings, all read from the environment through one `env` object (12-factor).

Every variable is listed in .env.example. With DEBUG off (production) the web and worker entry points refuse
to start without a real SECRET_KEY, DATABASE_URL, ALLOWED_HOSTS and SITE_URL (and the web entry points without
collected static files: loyalty/startup.py); nothing falls back to a default there.
"""

import os
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import unquote

import environ
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
TESTING = env.bool("TESTING", default=False)

# What keeps this configuration from serving. The web and worker entry points refuse to start while the list
# is not empty (loyalty/startup.py); tools that need neither (e.g. `makemigrations --check`) still load.
STARTUP_PROBLEMS: list[str] = []

if DEBUG or TESTING:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-insecure-key-not-for-production")
else:
    SECRET_KEY = env("SECRET_KEY", default="")
    if len(SECRET_KEY) < 32 or SECRET_KEY.startswith("dev-only"):
        STARTUP_PROBLEMS.append("Set SECRET_KEY to a random string of at least 32 characters.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG or TESTING else [])
if not ALLOWED_HOSTS:
    STARTUP_PROBLEMS.append("Set ALLOWED_HOSTS to the host names the site answers to (comma-separated).")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "anymail",
    "partners",
    "loyalty",
    "rewards",
    "communications",
    "analytics",
    "blueprints",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "loyalty.common.middleware.RefuseNulBytesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "partners.language.MemberLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "partners.security.RequireStaffTOTPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, so that it turns a locked-out sign-in into the lockout page whatever the view answered.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loyalty.urls"
WSGI_APPLICATION = "loyalty.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "partners.context_processors.viewer",
                "loyalty.views.context_processors.points",
                "rewards.context_processors.constants",
                "communications.context_processors.inbox",
            ],
        },
    },
]

# PostgreSQL only. `make run` / `make test` start an embedded server and set DATABASE_URL for us
# (loyalty/dev/embedded_db.py); anything else must say where its database is.
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
    # A Unix-socket directory arrives percent-encoded in the URL's host part.
    DATABASES["default"]["HOST"] = unquote(DATABASES["default"].get("HOST", ""))
else:
    STARTUP_PROBLEMS.append(
        "DATABASE_URL is not set. Use `make run` / `make test` (they start an embedded PostgreSQL), "
        "or set DATABASE_URL=postgres://user@host:5432/dbname."
    )
    # Any database access fails; commands that need no database still run.
    DATABASES = {"default": {"ENGINE": "django.db.backends.dummy"}}
# Keep connections open between requests: a new connection per request costs ~5x throughput here.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Web requests are short: parallel query workers only add start-up latency on a small machine.
# JIT compilation costs more than it saves on them too (it once added ~0.8 s to a checkout query).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
    f"-c max_parallel_workers_per_gather={env.int('DB_PARALLEL_WORKERS', default=0)} -c jit=off"
)
# A read replica of the primary (PostgreSQL streaming replication): the dashboards' roll-up reads and the exports go
# there when it is set (analytics/routers.py); writes, and reads of what was just written, stay on the primary.
REPLICA_DATABASE_URL = env("REPLICA_DATABASE_URL", default="")
if REPLICA_DATABASE_URL:
    DATABASES["replica"] = env.db_url("REPLICA_DATABASE_URL")
    DATABASES["replica"]["HOST"] = unquote(DATABASES["replica"].get("HOST", ""))
    for _key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS", "ATOMIC_REQUESTS"):
        DATABASES["replica"][_key] = DATABASES["default"][_key]
    DATABASES["replica"].setdefault("OPTIONS", {})["options"] = DATABASES["default"]["OPTIONS"]["options"]
    # Tests run against the primary's test database only: the replica alias reads that one.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["analytics.routers.AnalyticsReplicaRouter"]

# A shared cache (Redis) in production: sessions are read from it instead of the database on every
# request. Without CACHE_URL each process has its own memory cache and sessions stay in the database
# (a per-process cache must never hold sessions: a logout on one worker would not reach the others).
CACHE_URL = env("CACHE_URL", default="")
if CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "partners.User"

AUTHENTICATION_BACKENDS = [
    # First: refuses a sign-in while its e-mail address and client address are locked out (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Password hashing dominates auth tests otherwise.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# django-allauth: e-mail is the login; sign-up only through an invitation (partners.adapters).
ACCOUNT_ADAPTER = "partners.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Partner Loyalty] "
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
# Failed passwords are counted by django-axes (below), per e-mail address and client address together, for the
# member site and the back office alike (/admin/login/ sends people to allauth's sign-in). allauth's own login
# limits count per e-mail alone (5 wrong tries locked a person out for everyone) or per address alone (other
# people's correct passwords were refused), so they are off, and partners.adapters.AccountAdapter leaves
# passwords to axes. "login_failed" now only counts wrong two-factor codes, per user (reachable only with the
# right password). allauth's other limits (password-reset mails, e-mail management, ...) stay as they are.
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": "5/300s/key"}
# Behind a load balancer or reverse proxy, how many of them add to X-Forwarded-For: the client address that
# sign-in lockouts and rate limits count is the one the outermost trusted proxy saw (0: REMOTE_ADDR).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# django-axes: after LOGIN_FAILURE_LIMIT wrong passwords for one e-mail address from one client address, that
# pair is locked for LOGIN_COOLOFF_MINUTES (each further try restarts the wait); the same person from elsewhere,
# and everyone else from the same address, can still sign in.
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "partners.security.login_email"
AXES_CLIENT_IP_CALLABLE = "partners.security.client_ip"
AXES_LOCKOUT_CALLABLE = "partners.security.lockout_response"

# Two-factor authentication (allauth.mfa): an authenticator app (TOTP) with recovery codes. Staff (program and
# account managers, anyone with back-office access) must set one up before they reach anything else
# (partners.security.RequireStaffTOTPMiddleware); partner members may turn it on from their profile.
MFA_ADAPTER = "partners.adapters.MFAAdapter"
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Partner Loyalty"
# Accept the code of the 30-second step before and after the current one: phones' clocks drift.
MFA_TOTP_TOLERANCE = 1

LANGUAGE_CODE = env("LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("pl", "Polski")]
TIME_ZONE = env("TIME_ZONE", default="Europe/Berlin")
USE_I18N = True
# The site's own translations (makemessages -l de; the .mo files are committed: docs/decisions.md).
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["loyalty.formats"]
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# collectstatic's target in production (whitenoise serves it, with the manifest of hashed names every page needs);
# development and tests serve straight from static/.
STATIC_ROOT = None if DEBUG or TESTING else env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
# Files no URL serves (invoices of sales claims): only views that check who may see them read them.
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=BASE_DIR / "private-media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Serve straight from static/ without collectstatic in development and tests.
WHITENOISE_USE_FINDERS = DEBUG or TESTING

_email = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
MAILERS = {"default": {"BACKEND": _email["EMAIL_BACKEND"]}}
if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
    # Django's SMTP backend, reading each address once (communications/mail.py).
    MAILERS["default"]["BACKEND"] = "communications.mail.EmailBackend"
    MAILERS["default"]["OPTIONS"] = {
        "host": _email["EMAIL_HOST"],
        "port": _email["EMAIL_PORT"],
        "username": _email["EMAIL_HOST_USER"],
        "password": _email["EMAIL_HOST_PASSWORD"],
        "use_tls": _email.get("EMAIL_USE_TLS", False),
        "use_ssl": _email.get("EMAIL_USE_SSL", False),
    }
# An e-mail provider through django-anymail instead of EMAIL_URL: ANYMAIL_ESP names it (postmark, mailgun,
# amazon_ses, ...; anymail.backends.<name>), ANYMAIL_OPTIONS holds its options as JSON ({"api_key": "..."}).
ANYMAIL_ESP = env("ANYMAIL_ESP", default="")
if ANYMAIL_ESP:
    MAILERS = {
        "default": {
            "BACKEND": f"anymail.backends.{ANYMAIL_ESP}.EmailBackend",
            "OPTIONS": env.json("ANYMAIL_OPTIONS", default={}),
        }
    }
# The provider's delivery reports (delivered, bounced, opened, clicked, complained) come to /anymail/<esp>/tracking/
# with this "user:password" as HTTP basic auth (set it in the provider's webhook address); anything else gets 400.
ANYMAIL = {
    "WEBHOOK_SECRET": env("ANYMAIL_WEBHOOK_SECRET", default="dev-only:webhook-secret" if DEBUG or TESTING else ""),
}
if ANYMAIL_ESP and ":" not in ANYMAIL["WEBHOOK_SECRET"]:
    STARTUP_PROBLEMS.append("Set ANYMAIL_WEBHOOK_SECRET to a random user:password pair for the provider's webhooks.")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Partner Loyalty <loyalty@example.com>")
# Who an e-mail for an unknown address (a password reset, say) tells people to ask, besides their company's owner.
PROGRAM_CONTACT_EMAIL = env("PROGRAM_CONTACT_EMAIL", default=parseaddr(DEFAULT_FROM_EMAIL)[1])
# Text messages (communications.sms): console://, file:///dir, locmem:// or the provider's https://KEY@host/path.
# Empty (production's default): SMS is not configured and nothing is sent.
SMS_URL = env("SMS_URL", default="console://" if DEBUG else "")
SMS_SENDER = env("SMS_SENDER", default="Loyalty")
# At most this many marketing messages (campaigns, surveys) reach a member in any 7 days; the rest skip them.
MARKETING_MESSAGES_PER_WEEK = env.int("MARKETING_MESSAGES_PER_WEEK", default=2)

# Celery: inline (eager) when no broker is configured, so the demo needs no Redis.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = TIME_ZONE
# Periodic work, declared in code (django-celery-beat does not support Django 6.1).
CELERY_BEAT_SCHEDULE = {
    "expire-due-points": {"task": "loyalty.tasks.expire_due_points", "schedule": 60 * 60 * 6},
    "release-due-points": {"task": "loyalty.tasks.release_due_points", "schedule": 60 * 15},
    "warn-expiring-points": {"task": "loyalty.tasks.warn_expiring_points", "schedule": 60 * 60 * 24},
    "send-due-deliveries": {"task": "communications.tasks.send_due_deliveries", "schedule": 60 * 5},
    "send-scheduled-campaigns": {"task": "communications.tasks.send_scheduled_campaigns", "schedule": 60 * 5},
    "evaluate-tiers": {"task": "loyalty.tasks.evaluate_tiers", "schedule": 60 * 60 * 24},
    "warn-tier-keep": {"task": "loyalty.tasks.warn_tier_keep", "schedule": 60 * 60 * 24},
    "warn-expiring-certificates": {"task": "loyalty.tasks.warn_expiring_certificates", "schedule": 60 * 60 * 24},
    "send-nudges": {"task": "communications.tasks.send_nudges", "schedule": 60 * 60 * 24},
    "start-challenges": {"task": "loyalty.tasks.start_challenges", "schedule": 60 * 5},
    "settle-challenges": {"task": "loyalty.tasks.settle_challenges", "schedule": 60 * 15},
    "run-draws": {"task": "loyalty.tasks.run_draws", "schedule": 60 * 5},
    # Dashboards lag the sources by at most this; a run rebuilds two days (seconds) plus late sales days.
    "rollup-recent": {"task": "analytics.tasks.rollup_recent", "schedule": 60 * 15},
    "tidy-exports": {"task": "analytics.tasks.tidy_exports", "schedule": 60 * 60},
    # Weekly and monthly reports go out on the first run after their period ends; a missed day sends them the next.
    "send-reports": {"task": "analytics.tasks.send_reports", "schedule": 60 * 60 * 24},
    "remind-club-renewals": {"task": "loyalty.tasks.remind_club_renewals", "schedule": 60 * 60 * 24},
    # Webhooks whose retry is due (integrations.delivery.RETRY_DELAYS), and any whose task was lost.
    "deliver-due-webhooks": {"task": "integrations.tasks.deliver_due_webhooks", "schedule": 60},
    # The API's stored outcomes of idempotent requests are replayed for 24 hours, then forgotten.
    "tidy-idempotency-records": {"task": "integrations.tasks.tidy_idempotency_records", "schedule": 60 * 60},
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# The REST API (/api/v1/, docs/decisions.md #29): machine clients by key, people by token or site session; JSON
# only; every error a problem document (RFC 9457) from one handler; the schema from drf-spectacular.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.api.authentication.BearerAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.api.access.CallerAllowed"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.api.access.CallerThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "integrations.api.base.CursorPage",
    "DEFAULT_SCHEMA_CLASS": "integrations.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Partner Loyalty API",
    "DESCRIPTION": (
        "Sell-out, activity events, partners and members, balances and statements, rewards, orders, claims and "
        "referrals, for ERPs, distributors, fulfilment vendors, learning systems and the members' phone app. "
        "Every POST takes an `Idempotency-Key`; every error is a problem document (RFC 9457)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # One name per choice set used by several operations (drf-spectacular would number them otherwise).
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "rewards.constants.OrderStatus",
        "OrderMoveEnum": "rewards.api.orders.VENDOR_MOVES",
        "RewardKindEnum": "rewards.constants.RewardKind",
        "ClaimStatusEnum": "loyalty.constants.ClaimStatus",
        "ReferralStatusEnum": "loyalty.constants.ReferralStatus",
        "ImportStatusEnum": "loyalty.constants.ImportStatus",
        "EntryKindEnum": "loyalty.constants.EntryKind",
        "PartnerStatusEnum": "partners.constants.PartnerStatus",
        "PartnerKindEnum": "partners.constants.PartnerKind",
        "MemberStatusEnum": "partners.constants.MemberStatus",
    },
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Not in `check --deploy`: generating the schema reads the database, which the check must not need (the tests
    # validate the schema, and schemathesis checks the API against it).
    "ENABLE_DJANGO_DEPLOY_CHECK": False,
}
# Requests a minute (or /s, /h, /d): a machine client's unless it has its own, a person's, anyone not signed in.
API_CLIENT_RATE = env("API_CLIENT_RATE", default="1200/min")
API_MEMBER_RATE = env("API_MEMBER_RATE", default="120/min")
API_ANONYMOUS_RATE = env("API_ANONYMOUS_RATE", default="30/min")
# A person's token for the phone app lasts this many days.
API_MEMBER_TOKEN_DAYS = env.int("API_MEMBER_TOKEN_DAYS", default=30)

# Invitations: how long a link stays valid.
INVITATION_VALID_DAYS = env.int("INVITATION_VALID_DAYS", default=14)
# A message's short link (/m/<code>) signs its member in once within this many hours of sending; never staff.
SIGN_IN_LINK_HOURS = env.int("SIGN_IN_LINK_HOURS", default=72)
# The public address every link in a message starts with (loyalty/common/links.py, the only reader). In
# development it follows the port `make run` serves on (PORT); production must say it.
if DEBUG or TESTING:
    SITE_URL = env("SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}")
else:
    SITE_URL = env("SITE_URL", default="")
    if not SITE_URL.startswith(("https://", "http://")):
        STARTUP_PROBLEMS.append("Set SITE_URL to the site's public address, e.g. https://loyalty.example.com.")

# Content-Security-Policy, in development too so that a violation shows in the browser console before it ships:
# everything from our own origin; no inline script or style unless it carries the request's nonce
# ({% csp_nonce_attr %}); images may also be data: URIs (Bootstrap draws its icons with them); nobody frames us.
CONTENT_SECURITY_POLICY = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}
# CSP_REPORT_ONLY=true: browsers report violations in the console but still load everything (to try a change).
if env.bool("CSP_REPORT_ONLY", default=False):
    SECURE_CSP_REPORT_ONLY = CONTENT_SECURITY_POLICY
else:
    SECURE_CSP = CONTENT_SECURITY_POLICY

if not DEBUG and not TESTING:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # HSTS: an hour by default, so that a mistake is undone within the hour; subdomains and the browsers' preload
    # list are the operator's decision (.env.example), because a preloaded header cannot be taken back for months.
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if SECURE_HSTS_PRELOAD and not (SECURE_HSTS_INCLUDE_SUBDOMAINS and SECURE_HSTS_SECONDS >= 31_536_000):
        STARTUP_PROBLEMS.append(
            "SECURE_HSTS_PRELOAD needs SECURE_HSTS_INCLUDE_SUBDOMAINS=true and SECURE_HSTS_SECONDS of at least "
            "31536000 (one year): the browsers' preload list accepts nothing less."
        )
    # `check --deploy` warns while subdomains or preload are off. Once the environment says false, that is the
    # operator's decision and no longer worth a warning; left unset, the warning reminds them to decide.
    SILENCED_SYSTEM_CHECKS = [
        check
        for variable, check in [
            ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "security.W005"),
            ("SECURE_HSTS_PRELOAD", "security.W021"),
        ]
        if variable in os.environ and not env.bool(variable)
    ]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Inline (eager) tasks would log every success into the request or command output;
    # django-axes logs every start and each failed sign-in's housekeeping at INFO; failures and lockouts are WARNING.
    "loggers": {
        "celery.app.trace": {"level": "WARNING" if CELERY_TASK_ALWAYS_EAGER else "INFO"},
        "axes": {"level": "WARNING"},
    },
}
