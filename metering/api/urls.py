from django.urls import URLPattern, path

from metering.api.settings import WorkflowSettingsApi
from metering.api.usage import UsageEventBatchApi, UsageEventCollectionApi
from metering.api.workflows import (
    WorkflowCancelApi,
    WorkflowCollectionApi,
    WorkflowCompleteApi,
    WorkflowDetailApi,
    WorkflowStepApi,
)

urlpatterns: list[URLPattern] = [
    # Usage events (metering/api/usage.py).
    path("usage-events", UsageEventCollectionApi.as_view(), name="usage-event-list"),
    path("usage-events/batch", UsageEventBatchApi.as_view(), name="usage-event-batch"),
    # Workflow runs (metering/api/workflows.py); `workflow_id` is the run's id.
    path("workflows", WorkflowCollectionApi.as_view(), name="workflow-list"),
    path("workflows/<int:workflow_id>", WorkflowDetailApi.as_view(), name="workflow-detail"),
    path("workflows/<int:workflow_id>/steps", WorkflowStepApi.as_view(), name="workflow-steps"),
    path(
        "workflows/<int:workflow_id>/complete",
        WorkflowCompleteApi.as_view(),
        name="workflow-complete",
    ),
    path("workflows/<int:workflow_id>/cancel", WorkflowCancelApi.as_view(), name="workflow-cancel"),
    # The soft cap on new runs (metering/api/settings.py).
    path("workflow-settings", WorkflowSettingsApi.as_view(), name="workflow-settings"),
]
