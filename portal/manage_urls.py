"""The management pages' addresses (API keys, webhooks, team, alerts), included by
portal/urls.py under the `portal` namespace."""

from django.urls import path

from portal.views import alerts, keys, team, webhooks

urlpatterns = [
    path("keys/", keys.ApiKeysPage.as_view(), name="keys"),
    path("keys/<int:key_id>/revoke/", keys.ApiKeyRevokePage.as_view(), name="key-revoke"),
    path("webhooks/", webhooks.WebhooksPage.as_view(), name="webhooks"),
    path("webhooks/<int:endpoint_id>/", webhooks.WebhookPage.as_view(), name="webhook"),
    path(
        "webhooks/<int:endpoint_id>/test/", webhooks.WebhookTestPage.as_view(), name="webhook-test"
    ),
    path(
        "webhooks/<int:endpoint_id>/rotate/",
        webhooks.WebhookRotatePage.as_view(),
        name="webhook-rotate",
    ),
    path(
        "webhooks/<int:endpoint_id>/delete/",
        webhooks.WebhookDeletePage.as_view(),
        name="webhook-delete",
    ),
    path("team/", team.TeamPage.as_view(), name="team"),
    path("team/<int:membership_id>/role/", team.TeamRolePage.as_view(), name="team-role"),
    path("team/<int:membership_id>/remove/", team.TeamRemovePage.as_view(), name="team-remove"),
    path("team/leave/", team.TeamLeavePage.as_view(), name="team-leave"),
    path(
        "team/invitations/<int:invitation_id>/withdraw/",
        team.TeamWithdrawPage.as_view(),
        name="team-withdraw",
    ),
    path("team/join/<str:token>/", team.TeamJoinPage.as_view(), name="team-join"),
    path("alerts/", alerts.AlertsPage.as_view(), name="alerts"),
]
