from django.urls import path

from loyalty.api import ledger

urlpatterns = [
    path("accounts/", ledger.AccountListView.as_view(), name="api_account_list"),
    path("accounts/<int:pk>/", ledger.AccountDetailView.as_view(), name="api_account_get"),
    path("accounts/<int:pk>/statement/", ledger.AccountStatementView.as_view(), name="api_account_statement"),
    path("members/<int:pk>/balance/", ledger.MemberBalanceView.as_view(), name="api_member_balance"),
]
