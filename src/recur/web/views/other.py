"""Associate an existing subscription with a contact, company or deal (R-NEW-4, R-NEW-5); the payment
list; the Settings page (the account's settings, recur.core.account)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from recur.billing.models import Payment
from recur.billing.services import refundable
from recur.core import account, clock, records
from recur.core.errors import ServiceError
from recur.core.models import AccountSettings
from recur.subscriptions.models import Subscription
from recur.web import forms as wf
from recur.web.views.invoices import keyset
from recur.web.subscription_index import STATUS_BADGES

PAGE = 50
RECORD_PAGES = {"contact": "contact_detail", "company": "company_detail", "deal": "deal_detail"}


def _record(record_type, pk):
    if record_type not in RECORD_PAGES:
        raise Http404
    try:
        return records.get_record(record_type, pk)
    except ServiceError:
        raise Http404 from None


@login_required
def associate_subscription(request, record_type, pk):
    obj = _record(record_type, pk)
    back = reverse(RECORD_PAGES[record_type], args=[obj.pk])
    if request.method == "POST":
        sub = Subscription.objects.filter(pk=request.POST.get("subscription") or 0).first() \
            if str(request.POST.get("subscription", "")).isdigit() else None
        if sub is None:
            messages.error(request, _("Choose a subscription."))
            return redirect(request.get_full_path())
        try:
            records.associate(request.user, sub, obj)
        except ServiceError as exc:
            messages.error(request, wf.service_message(exc))
        else:
            messages.success(request, _("“%(sub)s” is associated with %(obj)s.") % {"sub": sub.name, "obj": obj})
        return redirect(back)
    q = (request.GET.get("q") or "").strip()
    linked = {i for _, i, _ in records.associated_ids(record_type, obj.pk, "subscription")}
    qs = Subscription.objects.select_related("contact").order_by("-pk")
    if q:
        qs = qs.filter(name__icontains=q) | Subscription.objects.filter(contact__name__icontains=q).select_related(
            "contact").order_by("-pk")
        if q.isdigit():
            qs = qs | Subscription.objects.filter(pk=int(q)).select_related("contact")
    rows = []
    for s in qs.order_by("-pk")[:PAGE]:
        s.badge = STATUS_BADGES.get(s.status, "grey")
        s.linked = s.pk in linked
        rows.append(s)
    return render(request, "web/subscription_associate.html", {
        "obj": obj, "record_type": record_type, "rows": rows, "q": q, "back": back})


# --- payments ------------------------------------------------------------------------------------------

PAYMENT_BADGES = {"succeeded": "green", "failed": "red", "pending": "amber", "refunded": "grey",
                  "partially_refunded": "amber"}


@login_required
def payment_list(request):
    status = request.GET.get("status", "")
    qs = Payment.objects.select_related("contact", "subscription", "invoice")
    if status in PAYMENT_BADGES:
        qs = qs.filter(status=status)
    rows, nxt = keyset(request, qs)
    for r in rows:
        r.badge = PAYMENT_BADGES.get(r.status, "grey")
        r.left = refundable(r)
    return render(request, "web/payment_list.html", {
        "rows": rows, "next": nxt, "status": status, "statuses": Payment.STATUSES})


# --- settings -------------------------------------------------------------------------------------------
# The account's settings (recur.core.account): super admins edit them one section at a time; other users
# see them read-only. The payment processor needs secrets, so it stays configured by the environment.


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(
        label=gettext_lazy("Account time zone"), max_length=64, required=False,
        widget=forms.TextInput(attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}),
        help_text=gettext_lazy("An IANA name such as Europe/Amsterdam. Payment dates, “today” and the times on "
                               "every page follow it; changing it keeps each subscription's dates."))


class PaymentDefaultsForm(forms.Form):
    default_payment_methods = forms.MultipleChoiceField(
        label=gettext_lazy("Accepted payment methods"), choices=AccountSettings.PAYMENT_METHODS, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("Pre-selected on new payment links and on new subscriptions that are collected "
                               "manually; each can still choose otherwise."))
    associate_billing_contacts = forms.BooleanField(
        label=gettext_lazy("Associate billing contacts"), required=False,
        help_text=gettext_lazy("A subscription converted from a quote or a deal is associated with its billing "
                               "contact. Subscriptions bought through a payment link or a quote are always "
                               "associated with the contact who paid."))


class DunningForm(forms.Form):
    dunning_retry_days = forms.CharField(
        label=gettext_lazy("Retry schedule (days)"), max_length=200, required=False,
        help_text=gettext_lazy("Days after each failed payment on which it is tried again, separated by commas: "
                               "“3, 5, 7” retries 3 days after the failure, then 5 days after that, then 7. "
                               "At most 10 retries of 1 to 60 days each; empty means no retries."))
    dunning_final_action = forms.ChoiceField(
        label=gettext_lazy("After the last retry fails"), choices=AccountSettings.FINAL_ACTIONS,
        widget=forms.RadioSelect)


class ReminderForm(forms.Form):
    reminder_enabled = forms.BooleanField(label=gettext_lazy("Send payment reminders"), required=False)
    reminder_days = forms.IntegerField(label=gettext_lazy("Days before the payment"), min_value=1, max_value=365)


SETTINGS_SECTIONS = {"timezone": TimeZoneForm, "payments": PaymentDefaultsForm, "dunning": DunningForm,
                     "reminders": ReminderForm}
SETTINGS_SAVED = {
    "timezone": gettext_lazy("Time zone saved."), "payments": gettext_lazy("Payment settings saved."),
    "dunning": gettext_lazy("Failed payment settings saved."), "reminders": gettext_lazy("Reminder settings saved."),
}


def _settings_initial(row: AccountSettings) -> dict:
    initial = {f: getattr(row, f) for f in account.FIELDS}
    initial["dunning_retry_days"] = ", ".join(str(d) for d in row.dunning_retry_days)
    return initial


def _retry_timeline(days) -> list[int]:
    """Days after the first failure on which each retry happens (3, 5, 7 → 3, 8, 15)."""
    out, total = [], 0
    for d in days:
        total += d
        out.append(total)
    return out


def _setting_changes(entry) -> list[tuple[str, str, str]]:
    """(setting, before, after) in the reader's language, for the "Recent changes" card."""
    from recur.notifications.models import BUYER_KINDS

    labels = {f.name: f.verbose_name for f in AccountSettings._meta.get_fields() if hasattr(f, "verbose_name")}
    labels["buyer_emails_enabled"] = gettext_lazy("e-mails to buyers")
    names = {**dict(AccountSettings.PAYMENT_METHODS), **dict(AccountSettings.FINAL_ACTIONS), **BUYER_KINDS}

    def show(value):
        if isinstance(value, list):
            return ", ".join(str(names.get(v, v)) for v in value) or "—"
        if isinstance(value, bool):
            return _("on") if value else _("off")
        return "—" if value in (None, "") else str(names.get(value, value))

    return [(str(labels.get(k, k)), show(pair[0]), show(pair[1])) for k, pair in entry.changes.items()]


@login_required
def settings_page(request):
    row = AccountSettings.load()
    initial = _settings_initial(row)
    forms_ = {name: cls(initial=initial) for name, cls in SETTINGS_SECTIONS.items()}
    if request.method == "POST":
        if not request.user.is_superuser:
            raise PermissionDenied
        section = request.POST.get("section", "")
        if section not in SETTINGS_SECTIONS:
            return HttpResponseBadRequest("section: unknown settings section")
        form = forms_[section] = SETTINGS_SECTIONS[section](request.POST)
        if form.is_valid():
            try:
                account.update(request.user, form.cleaned_data)
            except ServiceError as exc:
                wf.add_service_error(form, exc)
            else:
                messages.success(request, SETTINGS_SAVED[section])
                return redirect(reverse("settings") + f"#{section}")
    history = [(h, _setting_changes(h)) for h in account.history(10)]
    return render(request, "web/settings.html", {
        **{f"{name}_form": form for name, form in forms_.items()}, "row": row, "zones": account.time_zones(), "retry_timeline": _retry_timeline(row.dunning_retry_days),
        "method_labels": [label for value, label in AccountSettings.PAYMENT_METHODS
                          if value in row.default_payment_methods],
        "processor": settings.RECUR_PROCESSOR, "test_mode": settings.RECUR_TEST_MODE,
        "stripe_key_set": bool(settings.STRIPE_API_KEY), "stripe_webhook_set": bool(settings.STRIPE_WEBHOOK_SECRET),
        "history": history, "zone_now": clock.now(),
    })
