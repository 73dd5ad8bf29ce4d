"""The buyer's hosted pages, under /billing/ (R-ALL-1)."""

from django.urls import path

from recur.checkout import pay_views, views

app_name = "checkout"
urlpatterns = [
    path("invoice/<str:token>/", views.invoice_page, name="invoice"),
    path("invoice/<str:token>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("update/<str:token>/", views.update_page, name="update_payment_method"),
    path("pay/<str:token>/", pay_views.pay_page, name="pay"),
    path("pay/<str:token>/done/<str:nonce>/", pay_views.pay_done, name="pay_done"),
    path("quote/<str:token>/", pay_views.quote_page, name="quote"),
    path("quote/<str:token>/done/<str:nonce>/", pay_views.quote_done, name="quote_done"),
]
