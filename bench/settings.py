"""Settings for benchmarks only: the product's settings with a bench URLconf (it adds a bare view) and a fixed
secret key, so that the benchmark process and the gunicorn it starts sign sessions alike. Never deployed."""

from loyalty.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
SECRET_KEY = "bench-only-secret-key-never-used-in-production-7c1e9a4b52d8"
