import pytest
from django.core.exceptions import ImproperlyConfigured

from integrations import crypto


def test_round_trip_with_environment_key():
    token = crypto.encrypt_json({"access_token": "pat-secret"})

    assert "pat-secret" not in token
    assert crypto.decrypt_json(token) == {"access_token": "pat-secret"}


def test_missing_key_is_rejected_without_debug(monkeypatch, settings):
    monkeypatch.delenv(crypto.KEY_ENV_VAR)
    settings.DEBUG = False

    with pytest.raises(ImproperlyConfigured, match="ATTAIN_CREDENTIALS_KEY"):
        crypto.encrypt_json({"access_token": "pat-secret"})


def test_debug_falls_back_to_secret_key(monkeypatch, settings):
    monkeypatch.delenv(crypto.KEY_ENV_VAR)
    settings.DEBUG = True

    token = crypto.encrypt_json({"access_token": "pat-secret"})

    assert crypto.decrypt_json(token) == {"access_token": "pat-secret"}


def test_changed_key_makes_credentials_unreadable(monkeypatch):
    token = crypto.encrypt_json({"access_token": "pat-secret"})
    monkeypatch.setenv(crypto.KEY_ENV_VAR, "a-rotated-key")

    with pytest.raises(crypto.CredentialsUnreadable, match="Enter the credentials"):
        crypto.decrypt_json(token)
