"""The marketplace areas' shares of the authorization table (tests/orgs/test_authorization.py).

Each area module (``tests/<app>/endpoints.py``, ``tests/installs/controls_endpoints.py``) defines:

- ``ENDPOINTS``: its rows (``tests.orgs.endpoint.Endpoint``);
- ``make_targets(tenant, targets) -> dict``: creates, in the target tenant, one of each object its
  paths name and returns their ids by placeholder (``{"installation_id": …}``). ``targets`` is the
  table's ``Targets`` (its ``extension``, ``version``, ``org`` … may be used);
- ``snapshot(org) -> dict``: every row of the area the organisation owns, so that a refused
  request is shown to change nothing;
- optionally ``PORTAL_PAGES`` (URL names of its pages under ``/orgs/<org_id>/`` that take no other
  URL parameter) and ``PAGE_FORMS`` ({URL name: a form that page posts}) for the portal's
  tenant-isolation tests (tests/orgs/test_tenant_isolation.py), and ``OTHER_KIND`` ({placeholder:
  ``lambda targets: a real id of another kind``}) for each placeholder its paths add, for the
  mistyped-id cases there; and ``fuzz_targets(tenant, ids) -> {placeholder: [ids]}`` (``ids``: the
  fuzzer's rows so far, e.g. ``ids["extension_id"]``) for the placeholders its paths add
  (tests/test_api_fuzz.py).
"""

from tests.embed import endpoints as embed_endpoints
from tests.events import endpoints as events_endpoints
from tests.installs import controls_endpoints
from tests.installs import endpoints as installs_endpoints
from tests.listings import endpoints as listings_endpoints
from tests.webhooks import endpoints as webhooks_endpoints

# Later areas may use what earlier ones made in the target tenant (the installation, above all).
AREAS = (
    installs_endpoints,
    controls_endpoints,
    listings_endpoints,
    events_endpoints,
    webhooks_endpoints,
    embed_endpoints,
)
