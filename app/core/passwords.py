"""The instructor's password: checked against the plain setting or a stored scrypt hash.

The hashed form (`scrypt$<n>$<r>$<p>$<salt>$<hash>`, made by `layerlab hash-password`) lets
an instructor keep the password itself out of the server's environment and compose file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MIN_PASSWORD_CHARS = 12
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return "$".join(["scrypt", str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def is_password_hash(text: str) -> bool:
    parts = text.split("$")
    return len(parts) == 6 and parts[0] == "scrypt" and all(part.isdigit() for part in parts[1:4])


def verify_password(password: str, *, plain: str = "", hashed: str = "") -> bool:
    """True when `password` is the plain one or hashes to the stored hash (time-independent of where they differ)."""
    if plain:
        return hmac.compare_digest(password.encode(), plain.encode())
    if not is_password_hash(hashed):
        return False
    _, n, r, p, salt, digest = hashed.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
