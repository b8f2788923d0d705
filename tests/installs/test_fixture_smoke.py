from apps.extensions.models import ChannelRelease


def test_vendor_release_is_certified_and_on_its_channel(vendor):
    version = vendor.release(version="1.0.0")
    assert version.status == "published"
    assert ChannelRelease.objects.filter(version=version, channel="stable").exists()
    beta = vendor.release(version="1.1.0-beta.1", channel="beta", scopes=["events:read:order.created", "kv:write"])
    assert beta.scope_changes and beta.previous_id == version.pk
    draft = vendor.release("other", "0.1.0", certified=False)
    assert draft.status == "draft"
