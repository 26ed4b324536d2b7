"""No secrets in the repository: every file git tracks (or would add: untracked and not ignored) is
scanned for what looks like a key, a token or a hard-coded password. The few known credentials are
allowed one by one, each with the file it may appear in and why."""

import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A secret-looking name: password, secret, token, API key, private or access key.
_NAME = r"[A-Za-z0-9_]*(?:password|passwd|passphrase|secret|token|api_?key|private_?key|access_?key)[A-Za-z0-9_]*"
RULES = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"(?i)aws.{0,20}(?:secret|private).{0,20}[=:]\s*[\"']?([A-Za-z0-9/+]{40})\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Stripe live key": re.compile(r"\b[rs]k_live_[A-Za-z0-9]{16,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "JSON web token": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "DRF API token": re.compile(r"(?i)\b(?:token|bearer)\s+([0-9a-f]{40})\b"),
    # name = "literal" / name: 'literal' (Python, JSON, YAML); the literal is captured.
    "hard-coded secret": re.compile(rf"(?i)\b(?P<name>{_NAME})[\"']?\s*[:=]\s*([\"'])(?P<value>[^\"'\n]*)\2"),
    # NAME=value (shell, Dockerfile, .env) and NAME: value (YAML), unquoted; $VARIABLE references are fine.
    "hard-coded secret in configuration": re.compile(
        rf"(?i)\b(?P<name>{_NAME})\s*[:=][ \t]*(?P<value>[^\s\"'$#{{}}]+)[ \t]*$"
    ),
    "default of a secret variable": re.compile(rf"(?i)\$\{{{_NAME}:?-(?P<value>[^}}]*)\}}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s:/@\"'{}]+:(?P<value>[^\s@/\"'{}$]+)@"),
}
# Where a rule does not apply: in Python an unquoted value is an expression, not a literal.
NOT_IN = {"hard-coded secret in configuration": "*.py"}
# Where a secret is, not the secret: a name ending so, a value that is a path.
REFERENCE_NAMES = ("_FILE", "_PATH", "_DIR")
PATHS = ("/", "./")
SECRET_FILES = ("*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", ".env")

# (rule, value, files it may appear in, why it is not a secret). The only real credential is the
# demo user's, which the README documents; everything else here is a placeholder or a test fixture.
ALLOWED = [
    ("hard-coded secret", "demo", "shop/management/commands/seed_demo.py", "the documented demo user"),
    ("hard-coded secret", "demo", "tests/*", "the documented demo user, logged in by tests"),
    ("hard-coded secret", "dev-only-insecure-key-change-me", "shop/settings.py", "production refuses it"),
    ("hard-coded secret", "saga-engine-tests", "saga/tests/settings.py", "the engine's test project"),
    ("hard-coded secret", "pw", "tests/*", "users of throwaway test databases"),
    ("hard-coded secret", "a-long-password", "tests/*", "users of throwaway test databases"),
    ("hard-coded secret", "x", "tests/*", "a wrong CSRF token"),
    ("hard-coded secret", "t", "tests/admin/*", "an operator form's once-only token, refused for lack of permission"),
    ("hard-coded secret", "t0ken", "saga/tests/test_observability.py", "the metrics token of a test"),
    ("hard-coded secret", "s3cret-token", "tests/observability/test_metrics.py", "the metrics token of a test"),
    ("hard-coded secret", "short", "tests/security/test_settings.py", "a weak key production refuses"),
    ("hard-coded secret", "ab", "tests/security/test_settings.py", "a weak key production refuses"),
    ("hard-coded secret", "django-insecure-", "tests/security/test_settings.py", "a weak key production refuses"),
    ("password in a URL", "pass", "README.md", "a placeholder in the configuration table"),
    ("default of a secret variable", "shop", "docker-compose*.yml", "compose's PostgreSQL servers, not published"),
]


def repository_files() -> list[str]:
    """What git tracks, and what it would add (untracked, not ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    return sorted({name for name in out.decode().split("\0") if name and (ROOT / name).is_file()})


USED: set[int] = set()  # the entries of ALLOWED the scan needed


def allowed(rule: str, value: str, path: str) -> bool:
    for index, (r, v, files, _) in enumerate(ALLOWED):
        if rule == r and value == v and fnmatch(path, files):
            USED.add(index)
            return True
    return False


def findings(path: str, text: str) -> list[str]:
    found = []
    rules = {rule: pattern for rule, pattern in RULES.items() if not fnmatch(path, NOT_IN.get(rule, "\0"))}
    for number, line in enumerate(text.splitlines(), 1):
        for rule, pattern in rules.items():
            for match in pattern.finditer(line):
                value, name = match.groupdict().get("value"), match.groupdict().get("name") or ""
                if value is not None and (value == "" or value.startswith(PATHS) or allowed(rule, value, path)):
                    continue
                if name.upper().endswith(REFERENCE_NAMES):
                    continue
                found.append(f"{path}:{number}: {rule}: {line.strip()[:120]}")
    return found


def scan(files: list[str]) -> list[str]:
    found = []
    for name in files:
        if any(fnmatch(Path(name).name, pattern) for pattern in SECRET_FILES):
            found.append(f"{name}: a file of a kind that holds secrets")
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        found.extend(findings(name, text))
    return found


def test_the_repository_holds_no_secrets():
    files = repository_files()
    assert "shop/settings.py" in files and "docker-compose.yml" in files
    USED.clear()
    assert scan(files) == []
    stale = [entry for index, entry in enumerate(ALLOWED) if index not in USED]
    assert not stale, "allowed but not found any more: take these out of ALLOWED"


# Each rule is shown to fire on something it must catch. A "~" breaks each sample in this file, and is
# taken out at run time, so that this file holds none of them and the scan above stays clean.
SAMPLES = [
    ("private key", "-----BEGIN RSA PRIVATE ~KEY-----"),
    ("AWS access key id", "AKIA~Q3EGRIF5XTHBN2P7"),
    ("AWS secret access key", "aws_sec~ret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("GitHub token", "ghp_~a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"),
    ("Slack token", "xoxb-~123456789012-abcdefghij"),
    ("Stripe live key", "sk_live_~4eC39HqLyjWDarjtT1zdp7dc"),
    ("Google API key", "AIza~SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q"),
    ("JSON web token", "eyJ~hbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("DRF API token", "Authorization: Token ~9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"),
    ("hard-coded secret", "DATABASE_PASS~WORD = 'hunter2'"),
    ("hard-coded secret", 'const apiK~ey = "hunter2"'),
    ("hard-coded secret in configuration", "      POSTGRES_PASS~WORD: hunter2"),
    ("hard-coded secret in configuration", "export API_TOK~EN=hunter2"),
    ("default of a secret variable", "DJANGO_SECRET_K~EY: ${DJANGO_SECRET_K~EY:-insecure-compose-key}"),
    ("password in a URL", "DATABASE_URL=postgres~://shop:hunter2@db:5432/shop"),
]


def test_every_rule_has_a_sample():
    assert {rule for rule, _ in SAMPLES} == set(RULES)


@pytest.mark.parametrize(("rule", "line"), SAMPLES)
def test_each_rule_catches_its_kind_of_secret(rule, line):
    line = line.replace("~", "")
    assert any(f": {rule}: " in finding for finding in findings("anywhere.txt", line)), line


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("docker-compose.yml", "DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY:-}"),
        ("docker-compose.yml", "DJANGO_SECRET_KEY_FILE: /var/lib/shop/secret_key"),
        ("docker-compose.yml", "    - shop-secrets:/var/lib/shop"),
        ("docker-compose.yml", "DATABASE_URL: postgres://shop:${POSTGRES_PASS~WORD:-shop}@postgres:5432/shop"),
        ("README.md", "export DJANGO_SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))')"),
        ("tests/conftest.py", "password = f\":{db['PASSWORD']}\""),
        ("tests/conftest.py", 'client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")'),
        ("shop/settings.py", "SECRET_KEY = secret_key()"),
    ],
)
def test_references_to_secrets_are_not_secrets(path, line):
    assert findings(path, line.replace("~", "")) == []


def test_a_known_credential_is_allowed_only_where_it_belongs():
    compose_default = "POSTGRES_PASSWORD: ${POSTGRES_PASS~WORD:-shop}".replace("~", "")
    assert findings("docker-compose.yml", compose_default) == []
    assert findings("deploy/other-compose.yml", compose_default) != []
    assert findings("docker-compose.yml", "POSTGRES_PASS~WORD: shop".replace("~", "")) != []
    assert findings("tests/api/test_x.py", 'create_user("clerk", pass~word="pw")'.replace("~", "")) == []
    assert findings("common/api.py", 'create_user("clerk", pass~word="pw")'.replace("~", "")) != []


def test_files_that_hold_secrets_are_refused_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    (tmp_path / ".env").write_text("")
    (tmp_path / "server.pem").write_bytes(b"\x00")
    assert scan([".env", "server.pem"]) == [
        ".env: a file of a kind that holds secrets",
        "server.pem: a file of a kind that holds secrets",
    ]
