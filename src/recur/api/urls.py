"""Mounts every area's router on the one API object."""

from recur.api import crm
from recur.api.base import api

api.add_router("/contacts", crm.contacts)
api.add_router("/companies", crm.companies)
api.add_router("/deals", crm.deals)
api.add_router("/products", crm.products)
from recur.api.payments import payment_methods  # noqa: E402
api.add_router("/contacts", payment_methods, tags=["payment methods"])
