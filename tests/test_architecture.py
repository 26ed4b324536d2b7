"""What a newcomer adding a context or a message would otherwise forget, named by a failing test."""

import configparser
import re
from pathlib import Path

from saga.messaging import catalog

ROOT = Path(__file__).resolve().parents[1]


def _contexts() -> list[str]:
    """The bounded contexts: apps of this project with services and selectors, except orders, which composes them."""
    return sorted(
        p.parent.name
        for p in ROOT.glob("*/services.py")
        if (p.parent / "selectors.py").exists() and p.parent.name not in {"orders", "saga"}
    )


def _importlinter() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def test_the_message_table_of_the_readme_is_the_catalog() -> None:
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- message-catalog -->\n(.*?)\n<!-- /message-catalog -->", readme, re.S)
    assert shown, "README.md lost its message-catalog markers"
    assert shown.group(1) == catalog.table(), "run `python manage.py message_catalog` and paste it into README.md"


def test_every_app_of_the_project_is_checked_by_import_linter() -> None:
    apps = sorted(p.parent.name for p in ROOT.glob("*/apps.py"))
    listed = _lines(_importlinter()["importlinter"]["root_packages"])
    assert set(apps) <= set(listed), f"add {sorted(set(apps) - set(listed))} to root_packages in .importlinter"


def test_every_context_sits_in_the_layers_and_behind_its_public_surface() -> None:
    config = _importlinter()
    middle = _lines(config["importlinter:contract:layers"]["layers"])[1]
    hidden = _lines(config["importlinter:contract:context-public-surface"]["forbidden_modules"])
    for context in _contexts():
        assert context in [name.strip() for name in middle.split("|")], f"add {context} to the middle layer"
        assert f"{context}.models" in hidden, f"forbid {context}.models in the context-public-surface contract"
