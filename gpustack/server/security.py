"""Password hashing, API key and worker credential formats, signed session tokens."""

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

from gpustack.config import MIN_SECRET_KEY_BYTES
from gpustack.schemas.common import MAX_ID

API_KEY_PREFIX = "gpustack"
WORKER_PREFIX = "gpsw"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, hashed: str) -> bool:
    try:
        scheme, salt_hex, digest_hex = hashed.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), dklen=32, **_SCRYPT)
    return hmac.compare_digest(digest.hex(), digest_hex)


# scrypt takes ~50 ms of CPU and 16 MiB: run it off the event loop, a few at a time (a thread pool,
# not an asyncio semaphore, so it is shared by every event loop of the process).
_HASHING = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-hash")


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, hash_password, password)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_hex(16))


def _verify_or_dummy(password: str, hashed: str | None) -> bool:
    if hashed is None:
        verify_password(password, _dummy_hash())
        return False
    return verify_password(password, hashed)


async def check_password(password: str, hashed: str | None) -> bool:
    """verify_password off the event loop; with no user (hashed None) it checks a dummy hash, so the
    answer takes as long whether or not the user exists."""
    return await asyncio.get_running_loop().run_in_executor(_HASHING, _verify_or_dummy, password, hashed)


def hash_secret(secret: str) -> str:
    """Secrets we generate carry 256 bits of entropy, so one SHA-256 is enough (and fast per request)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(secret: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), hashed)


def new_api_key() -> tuple[str, str, str]:
    """Returns (access_key, secret, full key shown once)."""
    access = secrets.token_hex(8)
    secret = secrets.token_hex(24)
    return access, secret, f"{API_KEY_PREFIX}_{access}_{secret}"


def parse_api_key(value: str) -> tuple[str, str] | None:
    parts = value.split("_")
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        return None
    return parts[1], parts[2]


def new_worker_credential(worker_id: int) -> tuple[str, str]:
    """Returns (secret, credential) for a worker; the server stores only the secret's hash."""
    secret = secrets.token_hex(24)
    return secret, f"{WORKER_PREFIX}_{worker_id}_{secret}"


def parse_worker_credential(value: str) -> tuple[int, str] | None:
    parts = value.split("_")
    if len(parts) != 3 or parts[0] != WORKER_PREFIX or not (parts[1].isascii() and parts[1].isdigit()):
        return None
    if not 0 < int(parts[1]) <= MAX_ID:
        return None
    return int(parts[1]), parts[2]


def _checked(secret_key: bytes) -> bytes:
    """Refuse to sign with an empty or short key: anyone could forge what it signs."""
    if len(secret_key) < MIN_SECRET_KEY_BYTES:
        raise ValueError(f"the signing key has {len(secret_key)} bytes; at least {MIN_SECRET_KEY_BYTES} are needed")
    return secret_key


def proxy_credential(secret_key: bytes, worker_name: str, nonce: str) -> str:
    """What the server presents to a worker's proxy; given to the worker at registration. The nonce is
    rotated on each registration, so a past credential stops working."""
    return hmac.new(_checked(secret_key), f"proxy:{worker_name}:{nonce}".encode(), hashlib.sha256).hexdigest()


def new_token() -> str:
    """A random secret of 192 bits, hex."""
    return secrets.token_hex(24)


def sign_session(secret_key: bytes, user_id: int, ttl_seconds: int, epoch: int = 0) -> str:
    """A session cookie value; it stops working when the user's session epoch moves past `epoch`."""
    payload = f"{user_id}:{epoch}:{int(time.time()) + ttl_seconds}"
    sig = hmac.new(_checked(secret_key), payload.encode(), hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(f"{payload}:{sig}".encode()).decode()


def verify_session(secret_key: bytes, token: str) -> tuple[int, int] | None:
    """(user id, session epoch) of a validly signed, unexpired session token, else None (always None
    under a short key)."""
    if len(secret_key) < MIN_SECRET_KEY_BYTES:
        return None
    try:
        user_id, epoch, expires, sig = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        expected = hmac.new(secret_key, f"{user_id}:{epoch}:{expires}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sig) or int(expires) < time.time():
            return None
        return int(user_id), int(epoch)
    except (ValueError, UnicodeDecodeError):
        return None
