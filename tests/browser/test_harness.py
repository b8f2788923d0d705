"""The browser harness itself: fixtures and helpers other browser tests rely on."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import NARROW, horizontal_overflow, totp_code


def test_totp_code_matches_rfc_6238():
    # RFC 6238 appendix B, SHA-1 test vectors (8 digits); the secret is "12345678901234567890".
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp_code(secret, at=59, digits=8) == "94287082"
    assert totp_code(secret, at=1111111109, digits=8) == "07081804"
    assert totp_code(secret, at=20000000000, digits=8) == "65353130"


def test_login_as_opens_the_portal_without_the_sign_in_form(page: Page, login_as, acme):
    login_as(acme.owner)
    page.goto("/")
    expect(page.get_by_role("heading", name="Acme", level=1)).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(acme.owner.email)


@pytest.mark.parametrize("viewport", [NARROW])
def test_wrong_password_on_a_phone_is_explained_and_the_page_fits(page: Page, acme, password):
    page.goto("/accounts/login/")
    page.get_by_label("Email:", exact=True).fill(acme.owner.email)
    page.get_by_label("Password:", exact=True).fill("not-the-password")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text("The email address and/or password you specified are not correct.")).to_be_visible()
    assert page.viewport_size["width"] == 390
    assert horizontal_overflow(page) == []
    page.get_by_label("Password:", exact=True).fill(password)
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("heading", name="Acme", level=1)).to_be_visible()
    assert horizontal_overflow(page) == []
