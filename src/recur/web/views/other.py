"""Associate an existing subscription with a contact, company or deal (R-NEW-4, R-NEW-5); the payment
list; the settings page (only what can really be set)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _

from recur.billing.models import Payment
from recur.billing.services import refundable
from recur.core import records
from recur.core.errors import ServiceError
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


@login_required
def settings_page(request):
    from django import forms
    from django.utils.translation import gettext_lazy

    from recur.notifications import services as notifications

    class ReminderForm(forms.Form):
        reminder_enabled = forms.BooleanField(label=gettext_lazy("Send payment reminders"), required=False)
        reminder_days = forms.IntegerField(label=gettext_lazy("Days before the payment"), min_value=1, max_value=365)

    account = notifications.account_settings()
    form = ReminderForm(initial={"reminder_enabled": account.reminder_enabled, "reminder_days": account.reminder_days})
    if request.method == "POST":
        if not request.user.is_superuser:
            raise PermissionDenied
        form = ReminderForm(request.POST)
        if form.is_valid():
            try:
                notifications.update_account_settings(**form.cleaned_data)
            except ServiceError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, wf.service_message(exc))
            else:
                messages.success(request, _("Reminder settings saved."))
                return redirect("settings")
    return render(request, "web/settings.html", {
        "form": form, "tz": settings.RECUR_TIME_ZONE, "retry_days": settings.RECUR_DUNNING_RETRY_DAYS,
        "final_action": settings.RECUR_DUNNING_FINAL_ACTION, "processor": settings.RECUR_PROCESSOR,
        "test_mode": settings.RECUR_TEST_MODE,
    })
