from django.contrib.auth import views as auth_views
from django.urls import path

from recur.web import views
from recur.web.views import other, subscriptions as subs, wizard

urlpatterns = [
    path("", views.home, name="home"),
    path("setup/", views.setup, name="setup"),
    path("login/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("language/", views.set_language, name="set_language"),
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/search.json", wizard.contact_search, name="contact_search"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/payment-methods.json", wizard.contact_payment_methods, name="contact_payment_methods"),
    path("companies/", views.company_list, name="company_list"),
    path("companies/<int:pk>/", views.company_detail, name="company_detail"),
    path("deals/", views.deal_list, name="deal_list"),
    path("deals/<int:pk>/", views.deal_detail, name="deal_detail"),
    path("products/", views.product_list, name="product_list"),
    # subscriptions (R-VIEW-1, R-VIEW-2, R-NEW-3, R-MAN-1..5)
    path("subscriptions/", subs.subscription_index, name="subscription_index"),
    path("subscriptions/views/add/", subs.view_add, name="subscription_view_add"),
    path("subscriptions/views/<int:pk>/save/", subs.view_save, name="subscription_view_save"),
    path("subscriptions/views/<int:pk>/delete/", subs.view_delete, name="subscription_view_delete"),
    path("subscriptions/new/", wizard.subscription_new, name="subscription_new"),
    path("subscriptions/<int:pk>/", subs.subscription_detail, name="subscription_detail"),
    path("subscriptions/<int:pk>/edit/", subs.subscription_edit, name="subscription_edit"),
    path("subscriptions/<int:pk>/pause/", subs.subscription_pause, name="subscription_pause"),
    path("subscriptions/<int:pk>/resume/", subs.subscription_resume, name="subscription_resume"),
    path("subscriptions/<int:pk>/cancel/", subs.subscription_cancel, name="subscription_cancel"),
    path("subscriptions/<int:pk>/delete/", subs.subscription_delete, name="subscription_delete"),
    path("subscriptions/<int:pk>/export.csv", subs.subscription_export, name="subscription_export"),
    path("subscriptions/<int:pk>/update-link/", subs.update_link, name="subscription_update_link"),
    path("subscriptions/<int:pk>/payments/<int:payment_pk>/refund/", subs.payment_refund, name="payment_refund"),
    path("contacts/<int:pk>/subscriptions/associate/", other.associate_subscription, {"record_type": "contact"},
         name="contact_associate_subscription"),
    path("companies/<int:pk>/subscriptions/associate/", other.associate_subscription, {"record_type": "company"},
         name="company_associate_subscription"),
    path("deals/<int:pk>/subscriptions/associate/", other.associate_subscription, {"record_type": "deal"},
         name="deal_associate_subscription"),
    path("invoices/", other.invoice_list, name="invoice_list"),
    path("payments/", other.payment_list, name="payment_list"),
    path("settings/", other.settings_page, name="settings"),
]
