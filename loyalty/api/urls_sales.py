from django.urls import path

from loyalty.api import sales

urlpatterns = [
    path("sales/batches/", sales.SalesBatchView.as_view(), name="api_sales_batch"),
    path("sales/imports/", sales.SalesImportListView.as_view(), name="api_sales_imports"),
    path("sales/imports/<int:pk>/", sales.SalesImportView.as_view(), name="api_sales_import"),
]
