from django.utils import timezone, translation


class UserLanguageMiddleware:
    """A logged-in user sees the app in their own language (R-ALL-3); others
    get the browser's language through LocaleMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = translation.get_language()
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", translation.get_language())
        return response


class AccountTimeZoneMiddleware:
    """Pages show times in the account's time zone (Settings page), the zone billing dates are computed in."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from recur.core import clock

        with timezone.override(clock.account_zone()):
            return self.get_response(request)
