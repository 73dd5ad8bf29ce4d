"""Saved views of the subscriptions index (R-VIEW-1): filters + columns + sort, opened as tabs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SavedView(models.Model):
    """A user's saved view of an index page. ``filters`` holds the index state in the same
    shape as the page's URL parameters (see ``recur.web.subscription_index.IndexState``)."""

    object_type = models.CharField(max_length=40, default="subscription")
    name = models.CharField(_("name"), max_length=100)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    filters = models.JSONField(default=dict, blank=True)
    columns = models.JSONField(default=list, blank=True)
    sort = models.CharField(max_length=60, blank=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["owner", "object_type", "position"], name="savedview_owner_idx")]

    def __str__(self) -> str:
        return self.name
