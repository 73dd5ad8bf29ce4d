"""The buyer's hosted pages, under /billing/ (R-ALL-1)."""

from django.urls import path

from recur.checkout import views

app_name = "checkout"
urlpatterns = [
    path("invoice/<str:token>/", views.invoice_page, name="invoice"),
    path("invoice/<str:token>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("update/<str:token>/", views.update_page, name="update_payment_method"),
]
