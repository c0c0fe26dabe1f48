"""The mail outbox's states and delivery batch size, apart from :mod:`.mail` so that the CLI's
options can name them without loading the database layer."""

QUEUED, SENT, FAILED = "queued", "sent", "failed"
STATUSES = (QUEUED, SENT, FAILED)

#: Most messages one delivery run sends.
DEFAULT_LIMIT = 500
