"""One router per resource: verify, audit, ops, gallery (the staff pages are in ``api.ui``)."""
