"""The image and docker compose run in production mode, with a secret key from the environment or,
when none is given, one generated on the first start and kept in a volume."""

import os
import re
import runpy
import subprocess
from pathlib import Path

import pytest
import yaml

from tests import compose

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_ENV = COMPOSE["x-app"]["environment"]


def test_the_image_defaults_to_production():
    assert re.search(r"^ENV DJANGO_ENV=production\b", (ROOT / "Dockerfile").read_text(), re.MULTILINE)


@pytest.mark.parametrize("topology", compose.TOPOLOGIES)
def test_compose_runs_production_mode_with_the_key_from_the_environment(topology):
    assert APP_ENV["DJANGO_ENV"] == "production"
    assert APP_ENV["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:-}"  # no default key in the file
    for name, service in compose.app_services(topology).items():
        assert service["environment"]["DJANGO_ENV"] == "production", name
        assert service["environment"]["DJANGO_SECRET_KEY"] == "${DJANGO_SECRET_KEY:-}", name
        assert "DJANGO_DEBUG" not in service["environment"], name
        assert "shop-secrets:/var/lib/shop" in service["volumes"], name


def _first_start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The migrate service's script, with compose's $$ unescaped and manage.py's commands echoed."""
    script = COMPOSE["services"]["migrate"]["command"][-1].replace("$$", "$").replace("python manage.py", "echo")
    base = {
        "PATH": os.environ["PATH"],
        "DJANGO_SECRET_KEY_FILE": str(tmp_path / "secret_key"),
        "SHOP_DEMO_DATA": "true",
    }
    return subprocess.run(["sh", "-ec", script], env={**base, **env}, capture_output=True, text=True, check=True)


def test_compose_generates_a_strong_key_once_when_none_is_given(tmp_path, monkeypatch):
    first = _first_start(tmp_path, DJANGO_SECRET_KEY="")
    key_file = tmp_path / "secret_key"
    assert "Generated a secret key" in first.stdout and "migrate --noinput" in first.stdout
    assert key_file.stat().st_mode & 0o077 == 0  # readable by its owner only
    key = key_file.read_text()
    second = _first_start(tmp_path, DJANGO_SECRET_KEY="")
    assert "Generated" not in second.stdout and key_file.read_text() == key
    # The production settings take it.
    monkeypatch.setenv("DJANGO_ENV", "production")
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "localhost")
    monkeypatch.setenv("DJANGO_SECRET_KEY", "")
    monkeypatch.setenv("DJANGO_SECRET_KEY_FILE", str(key_file))
    assert runpy.run_path(str(ROOT / "shop" / "settings.py"))["SECRET_KEY"] == key.strip()


def test_compose_generates_no_key_when_one_is_given_and_skips_demo_data_when_asked(tmp_path):
    result = _first_start(tmp_path, DJANGO_SECRET_KEY="x" * 60, SHOP_DEMO_DATA="false")
    assert not (tmp_path / "secret_key").exists()
    assert "seed_demo" not in result.stdout
