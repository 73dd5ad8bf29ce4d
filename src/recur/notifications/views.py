"""Seller pages: the e-mail outbox, each message as its recipient sees it, e-mail settings.

R-ALL-5 (the outbox is the delivery without SMTP), R-BILL-3 (reminders), R-BILL-4 (per-user switches).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from recur.core import clock
from recur.core.errors import ServiceError
from recur.notifications import services
from recur.notifications.models import ADMIN_KINDS, BUYER_KINDS, KINDS, OutboxMessage

PAGE = 50
BADGES = {"queued": "grey", "sending": "amber", "sent": "green", "failed": "red", "kept": "blue"}


@login_required
def outbox(request):
    status, kind = request.GET.get("status", ""), request.GET.get("kind", "")
    qs = OutboxMessage.objects.order_by("-pk")
    if status in BADGES:
        qs = qs.filter(status=status)
    if kind in KINDS:
        qs = qs.filter(kind=kind)
    before = request.GET.get("before", "")
    if before.isdigit():
        qs = qs.filter(pk__lt=int(before))
    rows = list(qs[: PAGE + 1])
    config = services.smtp_config()
    return render(request, "notifications/outbox.html", {
        "rows": [(m, BADGES[m.status]) for m in rows[:PAGE]], "next": rows[PAGE - 1].pk if len(rows) > PAGE else None,
        "status": status, "kind": kind, "statuses": OutboxMessage.STATUSES, "kinds": KINDS.items(),
        "smtp": f"{config.host}:{config.port}" if config else "", "tz": clock.account_zone().key,
    })


@login_required
def outbox_detail(request, pk: int):
    message = get_object_or_404(OutboxMessage, pk=pk)
    account = services.account_settings()
    try:
        subject, text, html = services.render(message, account=account)
        error = ""
    except Exception as exc:  # show what is wrong instead of hiding the message
        subject, text, html, error = "", "", "", f"{type(exc).__name__}: {exc}"
    name, address = services.sender(account)
    return render(request, "notifications/outbox_detail.html", {
        "m": message, "badge": BADGES[message.status], "subject": subject, "text": text, "html": html,
        "render_error": error, "sender": f"{name} <{address}>", "tz": clock.account_zone().key,
        "attachments": message.context.get("attachments") or [],
    })


@login_required
@require_POST
def outbox_retry(request, pk: int):
    services.requeue(get_object_or_404(OutboxMessage, pk=pk))
    messages.success(request, _("The message will be sent again at the next delivery round."))
    return redirect("notifications:outbox_detail", pk=pk)


class AccountForm(forms.Form):
    reminder_enabled = forms.BooleanField(label=gettext_lazy("Send payment reminders"), required=False)
    reminder_days = forms.IntegerField(label=gettext_lazy("Days before the payment"), min_value=1, max_value=365)
    sender_name = forms.CharField(label=gettext_lazy("Sender name"), max_length=200, required=False)
    sender_email = forms.EmailField(label=gettext_lazy("Sender e-mail"), required=False)
    buyer_emails_enabled = forms.MultipleChoiceField(
        label=gettext_lazy("E-mails to buyers"), choices=list(BUYER_KINDS.items()), required=False,
        widget=forms.CheckboxSelectMultiple)


@login_required
def email_settings(request):
    """The user's own switches for admin e-mails; super admins also edit the account's e-mail settings."""
    account = services.account_settings()
    initial = {f: getattr(account, f) for f in AccountForm.base_fields}
    form = AccountForm(initial=initial)
    if request.method == "POST":
        if request.POST.get("form") == "account":
            if not request.user.is_superuser:
                raise PermissionDenied
            form = AccountForm(request.POST)
            if form.is_valid():
                try:
                    services.update_account_settings(request.user, **form.cleaned_data)
                except ServiceError as exc:
                    form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                else:
                    messages.success(request, _("E-mail settings saved."))
                    return redirect("notifications:settings")
        else:
            for kind in ADMIN_KINDS:
                services.set_user_kind(request.user, kind, request.POST.get(kind) == "on")
            messages.success(request, _("Your notification settings are saved."))
            return redirect("notifications:settings")
    mine = services.user_kinds(request.user)
    return render(request, "notifications/settings.html", {
        "form": form, "kinds": [(k, label, mine[k]) for k, label in ADMIN_KINDS.items()],
    })
