import types
import pytest
from apps.extensions.models import Extension, ExtensionVersion
import tests.test_api_fuzz as fuzz
from tests.listings import endpoints

_orig = fuzz._targets

def _targets(tenant):
    ids = _orig(tenant)
    ext = Extension.objects.get(pk=ids["extension_id"][0])
    ver = ExtensionVersion.objects.get(pk=ids["version_id"][0])
    extra = endpoints.make_targets(tenant, types.SimpleNamespace(extension=ext, version=ver, org=tenant.org))
    ids.update({k: [v] for k, v in extra.items()})
    return ids

fuzz._targets = _targets
OPS = [op for op in fuzz.OPERATIONS if any(w in op.label for w in ("marketplace", "listing", "review", "publisher"))]

@pytest.mark.parametrize("operation", OPS, ids=[op.label for op in OPS])
def test_fuzz(operation, world):
    fuzz.test_api_operation_honours_the_contract.__wrapped__(operation, world) if hasattr(fuzz.test_api_operation_honours_the_contract, "__wrapped__") else fuzz.test_api_operation_honours_the_contract(operation, world)

world = fuzz.world
wsgi_in_test_transaction = fuzz.wsgi_in_test_transaction
