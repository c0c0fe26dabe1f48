"""A plugin whose author misspelt ``on_login``: enrolkit must refuse to start with it."""

import enrolkit


@enrolkit.hookimpl
def on_logn(site, user):
    raise AssertionError("a misspelt hook must never be called")
