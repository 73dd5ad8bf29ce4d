"""Mounts every area's router on the one API object."""

from recur.api import billing, crm, quotes, subscriptions
from recur.api.base import api

api.add_router("/contacts", crm.contacts)
api.add_router("/companies", crm.companies)
api.add_router("/deals", crm.deals)
api.add_router("/products", crm.products)
api.add_router("/quotes", quotes.router)
api.add_router("/subscriptions", subscriptions.router)
api.add_router("/invoices", billing.invoices)
api.add_router("/payments", billing.payments)
api.add_router("/refunds", billing.refunds)
from recur.api.payments import payment_methods  # noqa: E402
api.add_router("/contacts", payment_methods, tags=["payment methods"])
from recur.api.payment_links import router as payment_links  # noqa: E402
api.add_router("/payment-links", payment_links)
