"""The Settings page in Chromium: a super admin changes the account's settings, sees an error beside the
field for a bad retry schedule, and reads the page in Dutch; a user who is not a super admin only reads it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from recur.core import account
from recur.core.auth import create_user

pytestmark = pytest.mark.django_db(transaction=True)


def log_in(page, email: str) -> None:
    page.goto(page.base + "/login/")
    page.fill("#id_username", email)
    page.fill("#id_password", "correct-horse-9")
    page.click("button[type=submit]")


def test_super_admin_changes_settings_in_english_and_reads_them_in_dutch(page, shot):
    admin = create_user("seller@example.com", "correct-horse-9", super_admin=True, name="Sam Seller")
    log_in(page, "seller@example.com")
    page.get_by_role("link", name="Settings").first.click()
    expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
    expect(page.get_by_test_id("processor")).to_contain_text("Built-in")
    expect(page.get_by_role("combobox", name="Account time zone")).to_have_value("Europe/Amsterdam")
    shot("1-defaults")

    # a bad retry schedule: the error is beside the field, described to assistive technology
    dunning = page.locator("#dunning")
    dunning.get_by_label("Retry schedule (days)").fill("3, 5, soon")
    dunning.get_by_label("Cancel the subscription").check()
    dunning.get_by_role("button", name="Save").click()
    field = page.get_by_label("Retry schedule (days)")
    expect(page.locator("#id_dunning_retry_days_error")).to_have_text("“soon” is not a whole number of days.")
    expect(field).to_have_attribute("aria-invalid", "true")
    shot("2-error")
    # keyboard only: fix the value, Tab to the radios, choose with the arrow keys, Enter submits
    field.fill("2, 4, 6")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the focused radio is the checked one ("Cancel the subscription")
    page.locator("#dunning").get_by_role("button", name="Save").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Failed payment settings saved.")).to_be_visible()
    expect(page.get_by_test_id("retry-summary")).to_contain_text("retries 2, 6, 12 days after the first failed payment")

    tz = page.get_by_role("combobox", name="Account time zone")
    tz.fill("America/New_York")
    page.locator("#timezone").get_by_role("button", name="Save").click()
    expect(page.get_by_text("Time zone saved.")).to_be_visible()

    payments = page.locator("#payments")
    payments.get_by_label("Card").uncheck()
    payments.get_by_label("Associate billing contacts").uncheck()
    payments.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Payment settings saved.")).to_be_visible()
    expect(page.get_by_test_id("settings-last-changed")).to_contain_text("by Sam Seller.")
    expect(page.get_by_test_id("settings-history")).to_contain_text("Time zone: Europe/Amsterdam → America/New_York")
    shot("3-saved")

    account.forget()
    now = account.current()
    assert (now.time_zone, now.dunning_retry_days, now.dunning_final_action) == ("America/New_York", (2, 4, 6), "cancel")
    assert now.default_payment_methods == ("bank_account",) and now.associate_billing_contacts is False

    admin.language = "nl"
    admin.save()
    page.reload()
    expect(page.get_by_role("heading", name="Instellingen", exact=True)).to_be_visible()
    expect(page.get_by_test_id("retry-summary")).to_contain_text("Daarna wordt het abonnement opgezegd.")
    shot("4-dutch")


def test_a_user_reads_the_settings_without_forms(page, shot, admin):
    create_user("bob@example.com", "correct-horse-9", name="Bob")
    log_in(page, "bob@example.com")
    page.goto(page.base + "/settings/")
    expect(page.get_by_text("Only super admins can change these settings.")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    expect(page.locator("#dunning")).to_contain_text("3, 5, 7")
    shot("read-only")
