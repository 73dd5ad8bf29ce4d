from django.shortcuts import redirect
from django.urls import reverse

from recur.core.models import User


class FirstRunMiddleware:
    """Until the first user exists, every seller page leads to the one-time setup page."""

    def __init__(self, get_response):
        self.get_response = get_response
        self.has_users = False

    def __call__(self, request):
        if not self.has_users and not request.path.startswith(("/api/", "/static/", "/webhooks/", "/billing/")):
            self.has_users = User.objects.exists()
            setup = reverse("setup")
            if not self.has_users and request.path != setup:
                return redirect(setup)
        return self.get_response(request)
