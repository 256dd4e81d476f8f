"""Password hashing with argon2id (argon2-cffi's default parameters)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 10
# Longer input is rejected before hashing, so that a huge form field costs
# the server nothing.
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()
# Verified against when the name is unknown or disabled, so that such an
# attempt takes as long as a wrong password for a real user.
_DUMMY_HASH = _hasher.hash("not a password of any user")


def check_new_password(password: str) -> None:
    """Raise ValueError when a new password is too short, too long or blank."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(
            f"password too short: expected at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"password too long: expected at most {MAX_PASSWORD_LENGTH} characters"
        )
    if not password.strip():
        raise ValueError("password invalid: it contains only white space")


def hash_password(password: str) -> str:
    """Hash a password for storage, in the PHC string format."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password in constant time for its length.

    ``password_hash`` None (no such user) still costs one verification.
    """
    if len(password) > MAX_PASSWORD_LENGTH:
        password = ""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and (
            password_hash is not None
        )
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Tell whether a hash was made with other parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)
