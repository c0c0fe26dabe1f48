"""The REST API under ``/api/v1`` (flask-smorest): what the CLI offers, for systems that
integrate with enrolkit. The OpenAPI document is at ``/api/v1/openapi.json``.

Requests carry ``Authorization: Bearer <token>`` (``enrolkit token create NAME --scope
read|write``); see :mod:`.tokens` for what a token may do. Errors are JSON:
``{"code": 422, "status": "Unprocessable Entity", "message": "...", "errors": {...}}`` where
``errors`` holds per-field messages by location (``json``, ``query``, ``files``).
"""

#: What a token may do: ``read`` only GETs, ``write`` may change anything a site admin may,
#: ``scim`` provisions users and cohorts at ``/scim/v2`` and nothing else. Here, not in
#: :mod:`.tokens`, so the CLI's options name them without loading the database layer.
READ, WRITE, SCIM = "read", "write", "scim"
SCOPES = (READ, WRITE, SCIM)
