"""Authorization-table rows of the enterprise identity endpoints (issue #3), one list per area so
that each can grow on its own. The ids available to paths are those of ``Targets.ids`` in
tests/orgs/test_authorization.py (``group_id`` and ``member_id`` among them)."""

from __future__ import annotations

from tests.orgs.endpoint import API, ORG, Endpoint  # noqa: F401

SSO_ENDPOINTS: list[Endpoint] = []
SECURITY_ENDPOINTS: list[Endpoint] = []
CONSOLE_ENDPOINTS: list[Endpoint] = []
