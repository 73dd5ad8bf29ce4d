"""Generic record services: create, update and delete with change history,
and associations between any two records (R-OBJ-3, R-OBJ-4).

Business areas call these from their own services; nothing else writes
``HistoryEntry`` or ``Association`` rows.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any, Iterable

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import ProtectedError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from recur.core import clock
from recur.core.errors import Conflict, NotFound, ValidationFailed, from_django_validation
from recur.core.models import Association, HistoryEntry, Record


def record_types() -> dict[str, type[Record]]:
    """Every concrete record model by its ``record_type`` ("contact", "company", …)."""
    found = {}
    for model in apps.get_models():
        if issubclass(model, Record) and model.record_type:
            found[model.record_type] = model
    return found


def model_for(record_type: str, *, field: str = "type") -> type[Record]:
    try:
        return record_types()[record_type]
    except KeyError:
        raise ValidationFailed(
            _("%(field)s: unknown record type %(value)s; expected one of %(choices)s")
            % {"field": field, "value": repr(record_type), "choices": ", ".join(sorted(record_types()))},
            field=field,
        ) from None


# Record types whose models have no translated verbose name of their own.
_NOUNS = {"invoice": gettext_lazy("invoice"), "payment": gettext_lazy("payment"), "refund": gettext_lazy("refund")}
_PLURALS = {"invoice": gettext_lazy("invoices"), "payment": gettext_lazy("payments"),
            "refund": gettext_lazy("refunds")}


def _noun(record_type: str) -> str:
    """A record type as a word in the active language, for inside a message: the English word is
    the record type itself ("payment_link"), as the API has always said; other languages get the
    model's name ("betaallink")."""
    if (translation.get_language() or "en").split("-")[0] == "en":
        return record_type
    return str(_NOUNS.get(record_type) or model_for(record_type)._meta.verbose_name)


def get_record(record_type: str, record_id: int, *, field: str | None = None, lock: bool = False) -> Record:
    model = model_for(record_type)
    qs = model.objects.select_for_update() if lock else model.objects
    try:
        return qs.get(pk=record_id)
    except (model.DoesNotExist, ValueError, TypeError):
        args = {"field": field, "type": _noun(record_type), "id": record_id}
        if field:
            raise ValidationFailed(_("%(field)s: no %(type)s with id %(id)s") % args, field=field) from None
        raise NotFound(_("No %(type)s with id %(id)s") % args) from None


def _plain(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def snapshot(obj: Record) -> dict[str, Any]:
    out = {}
    for name in obj.tracked_fields:
        field = obj._meta.get_field(name)
        out[name] = _plain(getattr(obj, field.attname))
    return out


def log(obj_or_type, record_id: int | None, actor, action: str, changes: dict | None = None) -> HistoryEntry:
    if isinstance(obj_or_type, Record):
        record_type, record_id = obj_or_type.record_type, obj_or_type.pk
    else:
        record_type = obj_or_type
    return HistoryEntry.objects.create(
        record_type=record_type,
        record_id=record_id,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        changes=changes or {},
        at=clock.now(),
    )


def full_clean(obj: Record, exclude: Iterable[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude))
    except ValidationError as exc:
        raise from_django_validation(exc) from None


@transaction.atomic
def create(model: type[Record], actor, fields: dict[str, Any]) -> Record:
    now = clock.now()
    obj = model(**fields)
    if obj.owner_id is None and getattr(actor, "pk", None):
        obj.owner = actor
    obj.created_at = obj.updated_at = now
    full_clean(obj)
    obj.save()
    log(obj, None, actor, "created", {k: [None, v] for k, v in snapshot(obj).items() if v not in (None, "", [])})
    return obj


@transaction.atomic
def update(obj: Record, actor, fields: dict[str, Any]) -> Record:
    before = snapshot(obj)
    for name, value in fields.items():
        setattr(obj, name, value)
    full_clean(obj)
    after = snapshot(obj)
    changes = {k: [before[k], after[k]] for k in after if before.get(k) != after[k]}
    if fields:
        obj.updated_at = clock.now()
        obj.save()
    if changes:
        log(obj, None, actor, "updated", changes)
    return obj


def delete(obj: Record, actor) -> None:
    """Delete a record and its associations; one that other records protect is refused (409)."""
    record_type, record_id = obj.record_type, obj.pk
    try:
        with transaction.atomic():
            Association.objects.filter(a_type=record_type, a_id=record_id).delete()
            Association.objects.filter(b_type=record_type, b_id=record_id).delete()
            obj.delete()
            log(record_type, record_id, actor, "deleted", {})
    except ProtectedError as exc:
        kinds = sorted({str(_PLURALS.get(getattr(o, "record_type", ""), o._meta.verbose_name_plural))
                        for o in exc.protected_objects})
        raise Conflict(_("This %(type)s cannot be deleted: %(kinds)s still refer to it")
                       % {"type": obj._meta.verbose_name, "kinds": ", ".join(kinds)}, code="protected") from None


def history(record_type: str, record_id: int):
    return HistoryEntry.objects.filter(record_type=record_type, record_id=record_id).select_related("actor")


# --- associations ------------------------------------------------------------


def _canonical(t1: str, i1: int, t2: str, i2: int):
    return (t1, i1, t2, i2) if (t1, i1) <= (t2, i2) else (t2, i2, t1, i1)


@transaction.atomic
def associate(actor, a: Record, b: Record, label: str = "") -> bool:
    """Link two records; returns False when they were linked already."""
    if a.record_type == b.record_type and a.pk == b.pk:
        raise ValidationFailed(_("A record cannot be associated with itself"), field="to_id")
    at, ai, bt, bi = _canonical(a.record_type, a.pk, b.record_type, b.pk)
    _row, created = Association.objects.get_or_create(
        a_type=at, a_id=ai, b_type=bt, b_id=bi, label=label, defaults={"created_at": clock.now()}
    )
    if created:
        log(a, None, actor, "associated", {b.record_type: [None, b.pk]})
        log(b, None, actor, "associated", {a.record_type: [None, a.pk]})
    return created


@transaction.atomic
def dissociate(actor, a: Record, b: Record) -> bool:
    at, ai, bt, bi = _canonical(a.record_type, a.pk, b.record_type, b.pk)
    deleted, _rows = Association.objects.filter(a_type=at, a_id=ai, b_type=bt, b_id=bi).delete()
    if deleted:
        log(a, None, actor, "dissociated", {b.record_type: [b.pk, None]})
        log(b, None, actor, "dissociated", {a.record_type: [a.pk, None]})
    return bool(deleted)


def associated_ids(record_type: str, record_id: int, other_type: str | None = None) -> list[tuple[str, int, str]]:
    """(type, id, label) of every record linked to the given one, optionally of one type."""
    out = []
    q1 = Association.objects.filter(a_type=record_type, a_id=record_id)
    q2 = Association.objects.filter(b_type=record_type, b_id=record_id)
    if other_type:
        q1 = q1.filter(b_type=other_type)
        q2 = q2.filter(a_type=other_type)
    out += [(t, i, lbl) for t, i, lbl in q1.values_list("b_type", "b_id", "label")]
    out += [(t, i, lbl) for t, i, lbl in q2.values_list("a_type", "a_id", "label")]
    return sorted(out)


def associated(record: Record, other_type: str):
    """The linked records of one type, as a queryset."""
    ids = [i for _, i, _ in associated_ids(record.record_type, record.pk, other_type)]
    return model_for(other_type).objects.filter(pk__in=ids).order_by("pk")
