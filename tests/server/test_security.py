"""Signing helpers: an empty or short key never signs and never verifies (forged cookies stay out)."""

import base64
import hashlib
import hmac
import time

import pytest

from gpustack.server.security import proxy_credential, sign_session, verify_session

GOOD_KEY = b"k" * 64


def _forge(key: bytes, user_id: int) -> str:
    payload = f"{user_id}:0:{int(time.time()) + 3600}"
    sig = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return base64.urlsafe_b64encode(f"{payload}:{sig}".encode()).decode()


@pytest.mark.parametrize("key", [b"", b"short"])
def test_cookie_signed_with_a_short_key_does_not_verify(key: bytes) -> None:
    assert verify_session(key, _forge(key, 1)) is None


@pytest.mark.parametrize("key", [b"", b"short"])
def test_short_keys_do_not_sign(key: bytes) -> None:
    with pytest.raises(ValueError, match="signing key"):
        sign_session(key, 1, 60)
    with pytest.raises(ValueError, match="signing key"):
        proxy_credential(key, "worker-1", "nonce")


def test_a_good_key_round_trips_and_rejects_forgeries() -> None:
    assert verify_session(GOOD_KEY, sign_session(GOOD_KEY, 7, 60)) == (7, 0)
    assert verify_session(GOOD_KEY, _forge(b"", 1)) is None


def test_proxy_credential_is_stable_per_worker_and_nonce() -> None:
    first = proxy_credential(GOOD_KEY, "worker-1", "n1")
    assert len(first) == 64 and first == proxy_credential(GOOD_KEY, "worker-1", "n1")
    assert first != proxy_credential(GOOD_KEY, "w2", "n1") and first != proxy_credential(GOOD_KEY, "worker-1", "n2")
