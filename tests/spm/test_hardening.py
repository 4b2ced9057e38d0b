"""Production settings, security headers and the Content Security Policy."""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import allauth
import pytest
from django.conf import settings
from django.urls import reverse

from tests.conftest import login

PRODUCTION_ENV = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(48)[:50],
    "ALLOWED_HOSTS": "attain.example.com",
}


# Variables of the test run that a production process does not have. The
# browser tests set DJANGO_ALLOW_ASYNC_UNSAFE, which the deploy check rejects.
TEST_ONLY_VARIABLES = {"ATTAIN_TESTING", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY_VARIABLES}
    return {**env, **overrides, "DJANGO_SETTINGS_MODULE": "spm.settings"}


def _run_production(args: list[str]) -> subprocess.CompletedProcess:
    """Run Python with the production settings: not under test, DEBUG off."""
    return subprocess.run(
        [sys.executable, *args],
        env=_production_env(**PRODUCTION_ENV),
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_is_clean():
    result = _run_production(
        ["manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


PRODUCTION_VALUES = (
    "SECURE_PROXY_SSL_HEADER SECURE_SSL_REDIRECT SESSION_COOKIE_SECURE "
    "CSRF_COOKIE_SECURE SECURE_HSTS_SECONDS SECURE_HSTS_INCLUDE_SUBDOMAINS "
    "SECURE_HSTS_PRELOAD X_FRAME_OPTIONS ALLAUTH_TRUSTED_PROXY_COUNT REST_FRAMEWORK"
).split()


def test_production_settings():
    code = (
        "import json, spm.settings as s;"
        f"print(json.dumps({{k: getattr(s, k) for k in {PRODUCTION_VALUES!r}}}))"
    )
    result = _run_production(["-c", code])
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SESSION_COOKIE_SECURE"] is True
    assert values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 365 * 24 * 3600
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is True
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["ALLAUTH_TRUSTED_PROXY_COUNT"] == 1
    assert values["REST_FRAMEWORK"]["NUM_PROXIES"] == 1


def test_production_needs_a_secret_key():
    env = _production_env(DEBUG="0", ALLOWED_HOSTS="attain.example.com")
    env.pop("SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, "-c", "import spm.settings"],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


EXPECTED_DIRECTIVES = {
    "default-src": "'self'",
    "script-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def _policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    directives = [part.strip() for part in header.split(";") if part.strip()]
    return dict(directive.split(" ", 1) for directive in directives)


def test_pages_send_the_policy(client, personas):
    login(client, personas.admin)
    response = client.get(reverse("measurement:team", args=["acme"]))
    policy = _policy(response)
    for directive, sources in EXPECTED_DIRECTIVES.items():
        assert policy[directive] == sources, directive
    style_sources = policy["style-src"].split()
    assert style_sources[0] == "'self'"
    assert all(source.startswith("'sha256-") for source in style_sources[1:])
    assert "unsafe" not in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_sign_in_page_sends_the_policy(client, db):
    response = client.get(reverse("account_login"))
    assert _policy(response)["script-src"] == "'self'"


def test_api_docs_page_has_no_inline_script(client, db):
    response = client.get(reverse("api-docs"))
    assert response.status_code == 200
    html = response.content.decode()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts
    for attributes, body in scripts:
        assert "src=" in attributes
        assert not body.strip()
    assert _policy(response)["script-src"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]

    script = client.get(reverse("api-docs"), {"script": ""})
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode()


TEMPLATE_DIRS = [Path(settings.BASE_DIR) / "templates"]
ALLAUTH_TEMPLATES = Path(allauth.__file__).parent / "templates"
# The allauth pages that Attain serves: account, two-factor and sessions.
ALLAUTH_DIRS = [ALLAUTH_TEMPLATES / name for name in ("account", "mfa", "usersessions")]
ALLAUTH_DIRS += [ALLAUTH_TEMPLATES / "allauth"]
# Pages Attain does not serve: changing the email address in place
# (ACCOUNT_CHANGE_EMAIL is off) and phone numbers (not a login method).
NOT_SERVED = {"account/email_change.html", "account/phone_change.html"}

INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
INLINE_STYLE = re.compile(r"<style\b|\sstyle=")
INLINE_HANDLER = re.compile(r"\son[a-z]+=[\"']|javascript:")


def _templates() -> list[tuple[str, Path]]:
    found = []
    for root in TEMPLATE_DIRS + ALLAUTH_DIRS:
        base = root if root in TEMPLATE_DIRS else ALLAUTH_TEMPLATES
        for path in sorted(root.rglob("*.html")):
            name = path.relative_to(base).as_posix()
            if name not in NOT_SERVED:
                found.append((name, path))
    return found


def _template_case(name, path):
    return pytest.param(path, id=name)


@pytest.mark.parametrize("path", [_template_case(*item) for item in _templates()])
def test_template_has_no_inline_code_or_style(path):
    """The policy blocks each of these, so none may appear in a served page."""
    text = path.read_text()
    assert not INLINE_SCRIPT.findall(text), "inline <script> with code"
    assert not INLINE_STYLE.findall(text), "<style> block or style attribute"
    assert not INLINE_HANDLER.findall(text), "event handler attribute or javascript:"
