"""Stripe's signed webhook (R-PAY-2, R-SIGN-5): asynchronous payment outcomes.

``POST /webhooks/stripe/`` with Stripe's ``Stripe-Signature`` header. The
signature is checked against ``STRIPE_WEBHOOK_SECRET`` before anything is read;
a missing or bad signature gets 400 and changes nothing.

Handled events (everything else is acknowledged and ignored):

==================================  ==========================================
payment_intent.succeeded            the attempt's payment succeeded
payment_intent.payment_failed       the attempt's payment failed
payment_intent.processing           a bank debit was submitted: pending
==================================  ==========================================

The PaymentIntent's ``metadata["recur_idempotency_key"]`` names the payment
attempt; PaymentIntents Recur did not make are ignored. The outcome goes to
``recur.billing.engine.record_results``, which changes only attempts still
``started`` or ``pending``: a late ``processing`` never moves a succeeded or
failed payment back. The one exception is money: a ``succeeded`` for an attempt
recorded as failed is recorded (the invoice is paid, a past-due subscription
active again, its retries stopped). The event id is inserted under a unique constraint in the
same transaction as the change, so a redelivered or concurrent copy of an event
changes nothing a second time.
"""

from __future__ import annotations

import logging

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from recur.core import clock
from recur.payments.models import ProcessedWebhookEvent
from recur.payments.processor import ChargeResult
from recur.payments.stripe import KEY_FIELD, failure_of

log = logging.getLogger("recur.payments.webhooks")

EVENT_STATUS = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.processing": "pending",
}


def _answer(status: int, **body) -> JsonResponse:
    return JsonResponse(body, status=status)


def result_for(event_type: str, pi: dict) -> ChargeResult | None:
    """The engine's view of one PaymentIntent event, or None when Recur has nothing to do with it."""
    status = EVENT_STATUS.get(event_type)
    key = (pi.get("metadata") or {}).get(KEY_FIELD)
    if status is None or not key:
        return None
    if status == "failed":
        return ChargeResult(key, "failed", pi.get("id", ""), *failure_of(pi))
    return ChargeResult(key, status, pi.get("id", ""))


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set; it was refused")
        return _answer(400, error="webhook secret not configured")
    signature = request.headers.get("Stripe-Signature")
    if not signature:
        return _answer(400, error="missing Stripe-Signature header")
    try:
        event = stripe.Webhook.construct_event(request.body, signature, secret)
    except stripe.SignatureVerificationError:
        return _answer(400, error="bad signature")
    except ValueError:  # not JSON
        return _answer(400, error="bad payload")
    data = event.to_dict()
    event_id, event_type = str(data.get("id") or ""), str(data.get("type") or "")
    pi = (data.get("data") or {}).get("object") or {}
    result = result_for(event_type, pi)
    if result is None or not event_id:
        return _answer(200, received=True, ignored=True)

    from recur.billing import engine

    with transaction.atomic():
        try:
            with transaction.atomic():
                ProcessedWebhookEvent.objects.create(processor="stripe", event_id=event_id[:255],
                                                     type=event_type[:100], received_at=clock.now())
        except IntegrityError:
            return _answer(200, received=True, duplicate=True)
        engine.record_results([result])
    return _answer(200, received=True)

