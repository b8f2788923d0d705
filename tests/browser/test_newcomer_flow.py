"""A newcomer's first visit, end to end in a real browser.

Sign up → verify the e-mail address from the mail's link → turn on two-factor authentication →
create an organisation → invite a colleague → create a service account and an API token → call the
API with it → sign out and back in, passing the second-factor prompt with a backup code.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.helpers import api_call, link_in, mails_to, screenshot, totp_code

EMAIL = "newcomer@example.test"
PASSWORD = "plaza-walkthrough-2718"
COLLEAGUE = "colleague@example.test"
ORG = "Newcomer Labs"


def test_newcomer_signs_up_secures_account_and_gets_an_api_token(page: Page, live_server):
    # --- sign up ------------------------------------------------------------------------------
    page.goto("/")
    screenshot(page, "newcomer-01-landing")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_role("heading", name="Sign Up")).to_be_visible()
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_label("Password (again)").fill(PASSWORD)
    screenshot(page, "newcomer-02-signup")
    page.get_by_role("button", name="Sign Up").click()

    # --- the verification mail: follow its link and confirm -------------------------------------
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    (confirmation,) = mails_to(EMAIL)
    page.goto(link_in(confirmation, r"/accounts/confirm-email/"))
    expect(page.get_by_role("heading", name="Confirm Email Address")).to_be_visible()
    page.get_by_role("button", name="Confirm").click()

    # Confirming signs the newcomer in; with no organisation yet, home leads to "create one".
    expect(page.get_by_role("heading", name="Create an organisation")).to_be_visible()
    expect(page.get_by_role("navigation", name="Account")).to_contain_text(EMAIL)

    # --- two-factor authentication ----------------------------------------------------------------
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Security").click()
    expect(page.get_by_role("heading", name="Set up an authenticator app")).to_be_visible()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    screenshot(page, "newcomer-03-mfa-enrol")
    secret = page.locator("#totp-secret").inner_text()  # what "scanning" the QR code reads
    page.get_by_label("Code").fill(totp_code(secret))
    page.get_by_role("button", name="Turn on").click()
    expect(page.get_by_role("heading", name="Two-factor authentication is on")).to_be_visible()
    backup_codes = page.get_by_role("list", name="Backup codes").get_by_role("listitem").all_inner_texts()
    assert len(backup_codes) == 10 and all(code.strip() for code in backup_codes)
    screenshot(page, "newcomer-04-backup-codes")
    page.get_by_role("link", name="Continue").click()

    # --- create an organisation -----------------------------------------------------------------
    expect(page.get_by_role("heading", name="Create an organisation")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(ORG)
    page.get_by_role("button", name="Create organisation").click()
    expect(page.get_by_role("heading", name=ORG, level=1)).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(f"Created {ORG}. You are its owner.")
    screenshot(page, "newcomer-05-org-overview")
    org_nav = page.get_by_role("navigation", name=ORG)

    # --- invite a colleague -----------------------------------------------------------------------
    org_nav.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    invite = page.get_by_role("region", name="Invite someone")
    invite.get_by_label("E-mail").fill(COLLEAGUE)
    invite.get_by_label("Role").select_option("developer")
    invite.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text(f"Invitation sent to {COLLEAGUE}.")
    expect(page.get_by_role("region", name="Open invitations").get_by_role("row", name=COLLEAGUE)).to_be_visible()
    (invitation,) = mails_to(COLLEAGUE)
    assert ORG in invitation.subject
    assert "as developer" in invitation.body
    link_in(invitation, r"/invitations/[^/]+/$")
    screenshot(page, "newcomer-06-members")

    # --- a service account and a token --------------------------------------------------------------
    org_nav.get_by_role("link", name="API tokens").click()
    new_account = page.get_by_role("region", name="New service account")
    new_account.get_by_label("Name", exact=True).fill("ci-bot")
    new_account.get_by_label("Description").fill("Deploys from CI")
    new_account.get_by_role("button", name="Create service account").click()
    expect(page.get_by_role("status")).to_contain_text("Service account ci-bot created.")

    account = page.get_by_role("region", name="Service account ci-bot")
    account.get_by_label("Token name").fill("deploy")
    account.get_by_role("checkbox", name=re.compile(r"^org:read\b")).check()
    account.get_by_role("checkbox", name=re.compile(r"^members:read\b")).check()
    account.get_by_label("Expires").select_option("30")
    account.get_by_role("button", name="Create token").click()
    created = page.get_by_role("status").filter(has=page.get_by_role("heading", name="Token “deploy” created"))
    expect(created).to_be_visible()
    secret_token = page.locator("#new-token-secret").inner_text().strip()
    assert secret_token.startswith("plz_")
    expect(page.get_by_role("row", name=re.compile(r"^deploy\b"))).to_contain_text("active")
    screenshot(page, "newcomer-07-token-created")

    # The token works over real HTTP, with exactly the scopes it was given.
    status, me = api_call(live_server.url, "me", secret_token)
    assert status == 200, me
    assert me["kind"] == "service_account" and me["name"] == "ci-bot"
    assert me["scopes"] == ["members:read", "org:read"]
    assert [m["org_name"] for m in me["memberships"]] == [ORG]
    org_id = me["org_id"]
    assert api_call(live_server.url, f"orgs/{org_id}", secret_token)[0] == 200
    status, body = api_call(live_server.url, f"orgs/{org_id}/tokens", secret_token)
    assert status == 403 and body["error"]["code"] == "missing_scope"

    # The secret is shown once: a fresh visit to the page no longer has it.
    org_nav.get_by_role("link", name="API tokens").click()
    expect(page.locator("#new-token-secret")).to_have_count(0)
    expect(page.get_by_text(secret_token)).to_have_count(0)

    # --- sign out, sign in again: the second factor is asked for, and a backup code passes ---------------
    page.get_by_role("link", name=re.compile(r"^Sign out")).click()
    page.get_by_role("button", name="Sign Out").click()
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()
    screenshot(page, "newcomer-08-sign-in")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password:", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()

    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    screenshot(page, "newcomer-09-mfa-prompt")
    # Half signed in, the page shows nothing of the account and nothing else is reachable.
    expect(page.get_by_role("combobox", name="Organisation")).to_have_count(0)
    expect(page.get_by_role("link", name="Security")).to_have_count(0)
    page.goto(f"/orgs/{org_id}/tokens/")
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    page.get_by_label("Code").fill(backup_codes[0])
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Service accounts and API tokens")).to_be_visible()

    page.get_by_role("navigation", name="Account").get_by_role("link", name="Security").click()
    expect(page.get_by_text("9 unused backup codes left.")).to_be_visible()
