"""State changes of the web app's own records: saved views of index pages (R-VIEW-1).

Like every service, each function is one transaction and bad input raises
``ValidationFailed`` naming the field.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from recur.core import clock
from recur.core.errors import NotFound, ValidationFailed
from recur.web.models import SavedView

MAX_VIEWS = 50


def views_of(user, object_type: str = "subscription"):
    return SavedView.objects.filter(owner=user, object_type=object_type).order_by("position", "id")


def get_view(user, view_id) -> SavedView:
    view = SavedView.objects.filter(owner=user, pk=view_id).first() if str(view_id).isdigit() else None
    if view is None:
        raise NotFound(_("No saved view with id %(id)s") % {"id": view_id})
    return view


def _name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed(_("name: a view needs a name"), field="name")
    if len(name) > 100:
        raise ValidationFailed(_("name: at most %(count)s characters") % {"count": 100}, field="name")
    return name


@transaction.atomic
def create_view(user, name: str, state: dict, object_type: str = "subscription") -> SavedView:
    """``state``: {"filters": {...}, "columns": [...], "sort": "..."}."""
    name = _name(name)
    mine = views_of(user, object_type)
    if mine.filter(name__iexact=name).exists():
        raise ValidationFailed(_("name: you have a view called %(name)s already") % {"name": repr(name)},
                               field="name")
    if mine.count() >= MAX_VIEWS:
        raise ValidationFailed(_("name: at most %(count)s views") % {"count": MAX_VIEWS}, field="name")
    now = clock.now()
    position = (mine.aggregate(m=Max("position"))["m"] or 0) + 1
    return SavedView.objects.create(owner=user, object_type=object_type, name=name, filters=state["filters"],
                                    columns=state["columns"], sort=state["sort"], position=position,
                                    created_at=now, updated_at=now)


@transaction.atomic
def update_view(user, view: SavedView, *, name: str | None = None, state: dict | None = None) -> SavedView:
    view = SavedView.objects.select_for_update().get(pk=get_view(user, view.pk).pk)
    if name is not None:
        name = _name(name)
        if views_of(user, view.object_type).filter(name__iexact=name).exclude(pk=view.pk).exists():
            raise ValidationFailed(_("name: you have a view called %(name)s already") % {"name": repr(name)},
                                   field="name")
        view.name = name
    if state is not None:
        view.filters, view.columns, view.sort = state["filters"], state["columns"], state["sort"]
    view.updated_at = clock.now()
    view.save()
    return view


@transaction.atomic
def delete_view(user, view: SavedView) -> None:
    get_view(user, view.pk).delete()


@transaction.atomic
def move_view(user, view: SavedView, direction: str) -> SavedView:
    """Move a saved view one place to the left ("left") or right ("right") among the user's tabs."""
    if direction not in ("left", "right"):
        raise ValidationFailed("direction: must be left or right", field="direction")
    view = get_view(user, view.pk)
    ordered = list(views_of(user, view.object_type).select_for_update())
    i = next(n for n, v in enumerate(ordered) if v.pk == view.pk)
    j = i - 1 if direction == "left" else i + 1
    if 0 <= j < len(ordered):
        ordered[i], ordered[j] = ordered[j], ordered[i]
    now = clock.now()
    for position, v in enumerate(ordered, start=1):  # renumbered: positions stay 1..n without gaps or ties
        if v.position != position:
            SavedView.objects.filter(pk=v.pk).update(position=position, updated_at=now)
    return SavedView.objects.get(pk=view.pk)
