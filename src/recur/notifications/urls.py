from django.urls import path

from recur.notifications import views

app_name = "notifications"
urlpatterns = [
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:pk>/", views.outbox_detail, name="outbox_detail"),
    path("outbox/<int:pk>/retry/", views.outbox_retry, name="outbox_retry"),
    path("settings/", views.email_settings, name="settings"),
]
