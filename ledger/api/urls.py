from django.urls import path

from ledger.api.views import BalanceGetApi, BucketListApi, EntryListApi

urlpatterns = [
    path("balance", BalanceGetApi.as_view(), name="balance"),
    path("ledger-entries", EntryListApi.as_view(), name="ledger-entries"),
    path("buckets", BucketListApi.as_view(), name="buckets"),
]
