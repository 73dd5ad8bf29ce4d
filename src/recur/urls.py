from django.urls import include, path

from recur.api.urls import api
from recur.payments.webhooks import stripe_webhook

urlpatterns = [
    path("api/v1/", api.urls),
    path("notifications/", include("recur.notifications.urls")),
    path("webhooks/stripe/", stripe_webhook, name="stripe-webhook"),
    path("billing/", include("recur.checkout.urls")),
    path("", include("recur.web.urls")),
]
