"""The docker compose stack as compose would run it, for tests that read it: each topology's files,
merged, with `extends` resolved and `${NAME:-default}` taken at its default. No Docker engine is
needed (CI has none): this follows the compose rules these files use, and `docker compose config`
checks the same files where the compose CLI is installed (tests/test_compose.py).

compose-spec.json beside this file is the Compose Specification's JSON schema (the compose-spec/
compose-spec repository, schema/compose-spec.json at commit 170098ba07d9, Apache License 2.0)."""

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = Path(__file__).with_name("compose-spec.json")
TOPOLOGIES = {
    "monolith": ("docker-compose.yml",),  # `docker compose up --build`
    "services": ("docker-compose.yml", "docker-compose.services.yml"),
}
APP_IMAGE = "saga-shop:latest"
_DEFAULTED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-([^}]*))?\}")


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / name).read_text())


def _merged(base: Any, override: Any, key: str = "") -> Any:
    """Compose's merge: mappings key by key, a command replaced, other sequences (volumes) joined."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for k, v in override.items():
            merged[k] = _merged(base[k], v, k) if k in base else v
        return merged
    if isinstance(base, list) and isinstance(override, list) and key != "command":
        return base + [item for item in override if item not in base]
    return override


def _resolved(service: dict[str, Any]) -> dict[str, Any]:
    """The service with what it extends under it, depends_on too (Compose v2 keeps it, where the
    retired docker-compose v1 refused to extend such a service)."""
    if "extends" not in service:
        return service
    own = {k: v for k, v in service.items() if k != "extends"}
    return _merged(_resolved(load(service["extends"]["file"])["services"][service["extends"]["service"]]), own)


def services(topology: str) -> dict[str, dict[str, Any]]:
    """Every service of the topology, as merged from its files (the later file over the earlier)."""
    merged: dict[str, dict[str, Any]] = {}
    for name in TOPOLOGIES[topology]:
        for service_name, service in load(name)["services"].items():
            service = _resolved(service)
            merged[service_name] = _merged(merged[service_name], service) if service_name in merged else service
    return merged


def app_services(topology: str) -> dict[str, dict[str, Any]]:
    """The services that run the shop's image."""
    return {name: s for name, s in services(topology).items() if s.get("image") == APP_IMAGE}


def defaulted(value: str) -> str:
    """A value as compose reads it when no variable is set: ${NAME:-default} is its default."""
    return _DEFAULTED.sub(lambda match: match.group(1) or "", value)
