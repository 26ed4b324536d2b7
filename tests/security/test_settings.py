"""DJANGO_ENV=production: no development key, no DEBUG, named hosts, HTTPS hardening, a clean
`check --deploy`. Development (`make run`, `make test`) keeps its defaults."""

import os
import runpy
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "shop" / "settings.py"
DEVELOPMENT_KEY = runpy.run_path(str(SETTINGS))["DEVELOPMENT_SECRET_KEY"]
STRONG_KEY = secrets.token_urlsafe(50)
SECURITY_VARIABLES = (
    "DJANGO_ENV",
    "DJANGO_SECRET_KEY",
    "DJANGO_SECRET_KEY_FILE",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "DJANGO_HTTPS",
    "DJANGO_BEHIND_PROXY",
    "DJANGO_HSTS_SECONDS",
    "CACHE_URL",
    "SHOP_ORDER_RATE",
)
PRODUCTION = {"DJANGO_ENV": "production", "DJANGO_SECRET_KEY": STRONG_KEY, "DJANGO_ALLOWED_HOSTS": "shop.example.com"}


@pytest.fixture
def load(monkeypatch):
    """The settings module evaluated afresh under the given environment (the running settings stay)."""

    def load(**env: str) -> dict:
        for name in SECURITY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load


def test_development_is_the_default_and_keeps_make_run_working(load):
    settings = load()
    assert settings["DJANGO_ENV"] == "development"
    assert settings["DEBUG"] is True and settings["SECRET_KEY"] == DEVELOPMENT_KEY
    assert settings["ALLOWED_HOSTS"] == ["*"]
    assert settings["SECURE_SSL_REDIRECT"] is False and settings["SESSION_COOKIE_SECURE"] is False
    assert settings["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


def test_production_turns_debug_off_and_the_hardening_on(load):
    settings = load(**PRODUCTION)
    assert settings["DEBUG"] is False
    assert settings["SECRET_KEY"] == STRONG_KEY and settings["ALLOWED_HOSTS"] == ["shop.example.com"]
    assert settings["SECURE_SSL_REDIRECT"] is True
    assert settings["SESSION_COOKIE_SECURE"] is True and settings["CSRF_COOKIE_SECURE"] is True
    assert settings["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert settings["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True and settings["SECURE_HSTS_PRELOAD"] is True
    assert "SECURE_PROXY_SSL_HEADER" not in settings  # only behind a proxy that sets it
    # Throttle counters shared by every gunicorn worker: Redis, the stack's own unless CACHE_URL says otherwise.
    assert settings["CACHES"]["default"]["BACKEND"].endswith("RedisCache")
    assert settings["CACHES"]["default"]["LOCATION"] == os.environ["REDIS_URL"]


def test_production_behind_a_proxy_trusts_its_forwarded_proto(load):
    settings = load(**PRODUCTION, DJANGO_BEHIND_PROXY="true")
    assert settings["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_production_over_plain_http_is_an_explicit_choice(load):
    settings = load(**PRODUCTION, DJANGO_HTTPS="false")
    assert settings["DEBUG"] is False
    assert settings["SECURE_SSL_REDIRECT"] is False and settings["SECURE_HSTS_SECONDS"] == 0


def test_the_secret_key_can_come_from_a_file(load, tmp_path):
    key_file = tmp_path / "secret_key"
    key_file.write_text(STRONG_KEY + "\n")
    env = {**PRODUCTION, "DJANGO_SECRET_KEY_FILE": str(key_file)}
    del env["DJANGO_SECRET_KEY"]
    assert load(**env)["SECRET_KEY"] == STRONG_KEY


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DJANGO_SECRET_KEY": None}, "DJANGO_SECRET_KEY is not set"),
        ({"DJANGO_SECRET_KEY": ""}, "DJANGO_SECRET_KEY is not set"),
        ({"DJANGO_SECRET_KEY": DEVELOPMENT_KEY}, "DJANGO_SECRET_KEY is the development key"),
        ({"DJANGO_SECRET_KEY": "short"}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "ab" * 40}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": "django-insecure-" + STRONG_KEY}, "DJANGO_SECRET_KEY is too weak"),
        ({"DJANGO_SECRET_KEY": None, "DJANGO_SECRET_KEY_FILE": "/nonexistent/key"}, "cannot be read"),
        ({"DJANGO_DEBUG": "true"}, "DJANGO_DEBUG is on"),
        ({"DJANGO_ALLOWED_HOSTS": None}, "DJANGO_ALLOWED_HOSTS must name the site's hosts"),
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS must name the site's hosts"),
        ({"DJANGO_ENV": "prod"}, "DJANGO_ENV='prod' is unknown"),
        ({"SHOP_ORDER_RATE": "lots"}, "SHOP_ORDER_RATE='lots'"),
        ({"CACHE_URL": "memcached://x"}, "CACHE_URL='memcached://x'"),
    ],
)
def test_production_refuses_to_start_unsafe(load, change, message):
    env = {**PRODUCTION, **change}
    with pytest.raises(ImproperlyConfigured, match=message):
        load(**{name: value for name, value in env.items() if value is not None})


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in SECURITY_VARIABLES}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_for_the_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "DEBUG", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout, result.stdout + result.stderr


def test_check_deploy_flags_the_development_settings():
    # The same check notices what production turns on: it is not a check that cannot fail.
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W018" in result.stderr and "security.W009" in result.stderr  # DEBUG; the development key


def test_a_production_process_without_a_key_does_not_start():
    env = {**PRODUCTION}
    del env["DJANGO_SECRET_KEY"]
    result = _manage("check", **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: DJANGO_SECRET_KEY is not set" in result.stderr
