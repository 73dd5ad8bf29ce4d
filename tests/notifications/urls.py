"""Test URLconf: the product's URLs plus the notifications pages at /notifications/, as the lead wires them."""

from django.urls import include, path

from recur.urls import urlpatterns as product

urlpatterns = list(product)
if not any(getattr(p, "namespace", None) == "notifications" for p in product):
    urlpatterns.insert(0, path("notifications/", include("recur.notifications.urls")))
