"""Seller pages. Thin: they read records and call services."""

from __future__ import annotations

from django import forms
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from recur.core import records
from recur.core.auth import UI_LANGUAGES, create_user, set_user_language
from recur.core.errors import ServiceError
from recur.core.models import User
from recur.crm.models import Company, Contact, Deal, Product
from recur.web import forms as wf

PAGE = 50


class SetupForm(forms.Form):
    name = forms.CharField(label=_("Your name"), max_length=200)
    email = forms.EmailField(label=_("E-mail"))
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput, min_length=8)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", _("The passwords differ."))
        return data


def setup(request):
    """One-time page that creates the first super admin, as self-hosted tools do."""
    if User.objects.exists():
        return redirect("login")
    form = SetupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                if User.objects.select_for_update().exists():
                    return redirect("login")
                user = create_user(
                    form.cleaned_data["email"], form.cleaned_data["password"], super_admin=True,
                    name=form.cleaned_data["name"], language=request.LANGUAGE_CODE or "en",
                )
        except ServiceError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, wf.service_message(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "web/setup.html", {"form": form})


@require_POST
def set_language(request):
    lang = request.POST.get("language", "en")
    if lang not in UI_LANGUAGES:
        lang = "en"
    if request.user.is_authenticated:
        lang = set_user_language(request.user, lang)
    nxt = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        nxt = "/"
    response = HttpResponseRedirect(nxt)
    response.set_cookie("django_language", lang, max_age=365 * 24 * 3600, samesite="Lax")
    return response


@login_required
def home(request):
    from recur.subscriptions.models import Subscription
    from recur.web.subscription_index import count_label

    return render(request, "web/home.html", {
        "subscriptions": count_label(Subscription.objects.all(), filtered=False)[1],
        "counts": {
            "contacts": Contact.objects.count(), "companies": Company.objects.count(),
            "deals": Deal.objects.count(), "products": Product.objects.count(),
        }
    })


def _page(request, qs):
    """Keyset paging on the primary key: stays fast however many rows there are."""
    after = request.GET.get("after")
    if after and after.isdigit():
        qs = qs.filter(pk__gt=int(after))
    rows = list(qs.order_by("pk")[: PAGE + 1])
    return rows[:PAGE], (rows[PAGE - 1].pk if len(rows) > PAGE else None)


def _record_page(request, record_type, pk, template, extra=None):
    try:
        obj = records.get_record(record_type, pk)
    except ServiceError:
        raise Http404 from None
    assoc = {}
    for t in ("contact", "company", "deal", "quote"):
        if t != record_type:
            assoc[t] = records.associated(obj, t)
    edit = {}
    if record_type in ("contact", "company", "deal", "product"):
        edit = {"edit_url": reverse(f"{record_type}_edit", args=[pk]),
                "delete_url": reverse(f"{record_type}_delete", args=[pk])}
    return render(request, template, {
        **edit, "obj": obj, "history": records.history(record_type, pk).order_by("-at", "-id"), "assoc": assoc,
        "record_type": record_type, "subscriptions": subscriptions_of(obj), **(extra or {}),
    })


def subscriptions_of(obj) -> list:
    """The subscriptions shown on a contact, company or deal (R-VIEW-3): billed to it, or associated."""
    from django.db.models import Q

    from recur.subscriptions.models import Subscription
    from recur.web.subscription_index import STATUS_BADGES

    ids = [i for _, i, _ in records.associated_ids(obj.record_type, obj.pk, "subscription")]
    q = Q(pk__in=ids)
    if obj.record_type == "contact":
        q |= Q(contact_id=obj.pk)
    elif obj.record_type == "company":
        q |= Q(company_id=obj.pk)
    subs = list(Subscription.objects.filter(q).order_by("-pk")[:50])
    for s in subs:
        s.badge = STATUS_BADGES.get(s.status, "grey")
    return subs


@login_required
def contact_list(request):
    q = request.GET.get("q", "").strip()
    qs = Contact.objects.filter(name__icontains=q) if q else Contact.objects.all()
    rows, nxt = _page(request, qs)
    return render(request, "web/contact_list.html", {"rows": rows, "next": nxt, "q": q, "total": qs.count()})


@login_required
def contact_detail(request, pk):
    from recur.web.views.commerce import payment_methods_context

    contact = Contact.objects.filter(pk=pk).first()
    extra = payment_methods_context(contact) if contact else None
    return _record_page(request, "contact", pk, "web/contact_detail.html", extra)


@login_required
def company_list(request):
    rows, nxt = _page(request, Company.objects.all())
    return render(request, "web/company_list.html", {"rows": rows, "next": nxt, "total": Company.objects.count()})


@login_required
def company_detail(request, pk):
    return _record_page(request, "company", pk, "web/company_detail.html")


@login_required
def deal_list(request):
    rows, nxt = _page(request, Deal.objects.all())
    return render(request, "web/deal_list.html", {"rows": rows, "next": nxt, "total": Deal.objects.count()})


@login_required
def deal_detail(request, pk):
    from recur.web.views.crm import deal_context

    deal = Deal.objects.filter(pk=pk).first()
    return _record_page(request, "deal", pk, "web/deal_detail.html", deal_context(deal) if deal else None)


@login_required
def product_list(request):
    rows, nxt = _page(request, Product.objects.all())
    return render(request, "web/product_list.html", {"rows": rows, "next": nxt, "total": Product.objects.count()})
