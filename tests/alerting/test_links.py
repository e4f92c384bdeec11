"""Acknowledgement links: genuine links verify; altered, foreign, expired or cut ones do not."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerting.links import LinkError, LinkSigner

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = 1_790_000_000_000
HOUR = 3_600_000


@pytest.fixture
def signer() -> LinkSigner:
    return LinkSigner(SECRET, "https://ew.example.cn/", ttl_ms=24 * HOUR)


def test_link_round_trip_is_short(signer: LinkSigner) -> None:
    url = signer.link(42, "hx-ops-zhou", NOW)
    assert url.startswith("https://ew.example.cn/a/")
    token = url.rsplit("/", 1)[1]
    # 18 bytes of base64 plus the person: short enough for an SMS.
    assert len(token) == 24 + 1 + len("hx-ops-zhou")
    claim = signer.verify(token, NOW + 23 * HOUR)
    assert (claim.alarm_ref, claim.person) == (42, "hx-ops-zhou")
    assert claim.expires_ms >= NOW + 24 * HOUR


def test_expired_link_is_refused(signer: LinkSigner) -> None:
    token = signer.token(42, "hx-ops-zhou", NOW)
    claim = signer.verify(token, NOW)
    with pytest.raises(LinkError, match="expired"):
        signer.verify(token, claim.expires_ms)


def test_another_person_cannot_reuse_the_link(signer: LinkSigner) -> None:
    token = signer.token(42, "hx-ops-zhou", NOW)
    packed = token.split(".")[0]
    with pytest.raises(LinkError, match="not genuine"):
        signer.verify(f"{packed}.hx-main-sun", NOW)


def test_link_of_another_server_is_refused(signer: LinkSigner) -> None:
    other = LinkSigner(b"another secret, also 32 bytes!!!", "https://x.example.cn")
    with pytest.raises(LinkError, match="not genuine"):
        signer.verify(other.token(42, "hx-ops-zhou", NOW), NOW)


@pytest.mark.parametrize("bad", ["", "abc", "abc.", ".hx-ops-zhou", "!!!!.hx", "AAAA.hx-ops-zhou"])
def test_damaged_links_are_refused_in_plain_words(signer: LinkSigner, bad: str) -> None:
    with pytest.raises(LinkError, match=r"incomplete|damaged|not genuine"):
        signer.verify(bad, NOW)


@given(
    ref=st.integers(0, 2**32 - 1),
    flip=st.integers(0, 17),
    bit=st.integers(0, 7),
)
def test_any_altered_bit_is_detected(ref: int, flip: int, bit: int) -> None:
    signer = LinkSigner(SECRET, "https://ew.example.cn")
    token = signer.token(ref, "js-duty-zhao", NOW)
    packed, person = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(packed + "=" * (-len(packed) % 4)))
    raw[flip] ^= 1 << bit
    altered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(LinkError):
        signer.verify(f"{altered}.{person}", NOW)


def test_weak_secret_and_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        LinkSigner(b"short", "https://ew.example.cn")
    signer = LinkSigner(SECRET, "https://ew.example.cn")
    with pytest.raises(ValueError, match="cannot be put in a link"):
        signer.token(1, "周立军", NOW)
    with pytest.raises(ValueError, match="does not fit"):
        signer.token(2**32, "hx-ops-zhou", NOW)
