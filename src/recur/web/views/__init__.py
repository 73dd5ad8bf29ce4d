"""Seller pages, one module per area. Thin: they read records and call services."""

from recur.web.views.base import (  # noqa: F401
    company_detail, company_list, contact_detail, contact_list, deal_detail, deal_list, home, product_list,
    set_language, setup,
)
