"""``Idempotency-Key`` on API POSTs (SPEC §12): the same key and body replay the
first response; the same key with another body is a 409.

The key is claimed by inserting a row before the handler runs, so two
concurrent requests with one key cannot both run the handler: the second
sees the claim and gets a 409 ("in progress") or, once the first finished,
the replay.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse

from recur.core.auth import hash_token
from recur.core.models import IdempotencyRecord

API_PREFIX = "/api/v1/"


def _conflict(message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": "idempotency_conflict", "message": message, "field": None}}, status=409)


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key")
        auth = request.headers.get("Authorization", "")
        if request.method != "POST" or not key or not request.path.startswith(API_PREFIX) or not auth.startswith("Bearer "):
            return self.get_response(request)
        if len(key) > 255:
            return JsonResponse({"error": {"code": "validation_error", "message": "Idempotency-Key: at most 255 characters",
                                           "field": "Idempotency-Key"}}, status=422)
        owner = hash_token(auth.removeprefix("Bearer ").strip())
        # Keyed: the body may hold card details, which an unkeyed hash would let one guess.
        body_hash = hmac.new(settings.SECRET_KEY.encode(), request.method.encode() + request.path.encode() + b"\0"
                             + request.body, hashlib.sha256).hexdigest()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    owner_key=owner, key=key, method=request.method, path=request.path, request_hash=body_hash
                )
        except IntegrityError:
            previous = IdempotencyRecord.objects.get(owner_key=owner, key=key)
            if previous.request_hash != body_hash:
                return _conflict("This Idempotency-Key was used with a different request")
            if previous.status_code is None:
                return _conflict("A request with this Idempotency-Key is still in progress")
            response = HttpResponse(bytes(previous.response_body or b""), status=previous.status_code,
                                    content_type=previous.content_type or "application/json")
            response["Idempotent-Replayed"] = "true"
            return response

        response = self.get_response(request)
        if response.status_code >= 500 or response.status_code in (401, 403):
            # Nothing was done (or we cannot tell): let the client try again with the same key.
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status_code=response.status_code,
                response_body=response.content,
                content_type=response.get("Content-Type", "application/json"),
            )
        return response
