"""The operations app's admin registrations, one module per concept."""

from operations import webhook_admin  # noqa: F401 - registers WebhookEndpoint
