"""The names and sizes the integration commands' options show: the webhook events, a delivery
batch's size and the change feed's page sizes. Apart from :mod:`.webhooks` and :mod:`.feed` so
that the CLI can name them without loading the database layer (as :mod:`.outbox` for mail)."""

ENROLLED, UNENROLLED, UPDATED = "user_enrolled", "user_unenrolled", "user_enrolment_updated"
ASSIGNED, UNASSIGNED = "role_assigned", "role_unassigned"
#: The events a webhook subscription may ask for, which are also those the change feed carries.
EVENTS = (ENROLLED, UNENROLLED, UPDATED, ASSIGNED, UNASSIGNED)

#: Most events one webhook request carries.
BATCH_SIZE = 100

#: Most changes one page of the change feed holds, and how many it holds when not told.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
