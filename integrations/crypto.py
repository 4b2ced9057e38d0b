"""Encryption at rest of CRM credentials (Fernet: AES-128-CBC with HMAC-SHA256).

The key is derived with HKDF-SHA256 from the environment variable
ATTAIN_CREDENTIALS_KEY, read on every call so a rotated value takes effect
without a restart. Only with DEBUG on does SECRET_KEY stand in for it.
Rotating the variable makes stored credentials unreadable: re-enter them.
"""

from __future__ import annotations

import base64
import json
import os

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

KEY_ENV_VAR = "ATTAIN_CREDENTIALS_KEY"


class CredentialsUnreadable(Exception):
    """Stored credentials cannot be decrypted with the current key."""


def _fernet() -> Fernet:
    secret = os.environ.get(KEY_ENV_VAR, "")
    if not secret:
        if not settings.DEBUG:
            raise ImproperlyConfigured(
                f"{KEY_ENV_VAR} is not set. Set it to a long random value to "
                "store CRM credentials."
            )
        secret = settings.SECRET_KEY
    derived = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"attain crm credentials",
    ).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_json(value: dict) -> str:
    return _fernet().encrypt(json.dumps(value).encode()).decode("ascii")


def decrypt_json(token: str) -> dict:
    try:
        return json.loads(_fernet().decrypt(token.encode("ascii")))
    except InvalidToken as exc:
        raise CredentialsUnreadable(
            "Stored CRM credentials cannot be decrypted: the key in "
            f"{KEY_ENV_VAR} changed. Enter the credentials again."
        ) from exc
