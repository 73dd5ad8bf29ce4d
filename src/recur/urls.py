from django.urls import include, path

from recur.api.urls import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("notifications/", include("recur.notifications.urls")),
    path("", include("recur.web.urls")),
]
