"""Routes every record resource shares: delete, associations, history (R-OBJ-3, R-OBJ-4)."""

from __future__ import annotations

from typing import Callable

from ninja import Router, Schema, Status

from recur.api.base import iso, scoped
from recur.core import records


class AssociationIn(Schema):
    to_type: str
    to_id: int
    label: str = ""


def association_out(t: str, i: int, label: str) -> dict:
    return {"type": t, "id": i, "label": label}


def add_record_routes(router: Router, record_type: str, area: str, delete: Callable | None = None) -> None:
    """``delete(obj, actor)`` replaces the plain delete where a record has rules of its own."""
    read, write = scoped(f"{area}:read"), scoped(f"{area}:write")

    @router.get("/{record_id}/associations", auth=read, summary=f"List records associated with a {record_type}",
                operation_id=f"{record_type}_list_associations")
    def list_associations(request, record_id: int, type: str | None = None):
        records.get_record(record_type, record_id)
        if type:
            records.model_for(type)
        return {"items": [association_out(*a) for a in records.associated_ids(record_type, record_id, type)]}

    @router.post("/{record_id}/associations", auth=write, response={201: dict, 200: dict},
                 summary=f"Associate a {record_type} with another record", operation_id=f"{record_type}_add_association")
    def add_association(request, record_id: int, payload: AssociationIn):
        me = records.get_record(record_type, record_id)
        other = records.get_record(payload.to_type, payload.to_id, field="to_id")
        created = records.associate(request.user, me, other, payload.label)
        return Status(201 if created else 200, association_out(other.record_type, other.pk, payload.label))

    @router.delete("/{record_id}/associations/{to_type}/{to_id}", auth=write, response={204: None},
                   summary=f"Remove an association of a {record_type}",
                   operation_id=f"{record_type}_remove_association")
    def remove_association(request, record_id: int, to_type: str, to_id: int):
        me = records.get_record(record_type, record_id)
        other = records.get_record(to_type, to_id)
        records.dissociate(request.user, me, other)
        return Status(204, None)

    @router.get("/{record_id}/history", auth=read, summary=f"The change history of a {record_type}",
                operation_id=f"{record_type}_history")
    def history(request, record_id: int):
        records.get_record(record_type, record_id)
        return {
            "items": [
                {
                    "at": iso(h.at),
                    "action": h.action,
                    "actor": h.actor.email if h.actor else None,
                    "changes": h.changes,
                }
                for h in records.history(record_type, record_id)
            ]
        }

    @router.delete("/{record_id}", auth=write, response={204: None}, summary=f"Delete a {record_type}",
                   operation_id=f"{record_type}_delete")
    def delete_record(request, record_id: int):
        obj = records.get_record(record_type, record_id)
        (delete or records.delete)(obj, request.user)
        return Status(204, None)
