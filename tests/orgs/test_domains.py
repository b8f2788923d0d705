from __future__ import annotations

import pytest

from apps.audit.models import AuditEvent
from apps.orgs.dns import StaticResolver


@pytest.fixture
def dns(settings):
    settings.PLAZA_DNS_RESOLVER = "apps.orgs.dns.StaticResolver"
    StaticResolver.records = {}
    yield StaticResolver.records
    StaticResolver.records = {}


def test_domain_verifies_when_the_txt_record_is_published(acme, api_for, dns):
    api = api_for(acme.org)
    domain = api.call("POST", f"orgs/{acme.org.pk}/domains", {"name": "Acme.Example.COM."}).json()
    assert domain["name"] == "acme.example.com" and domain["status"] == "pending"
    first = api.call("POST", f"orgs/{acme.org.pk}/domains/{domain['id']}/verify").json()
    assert first["status"] == "pending" and "No TXT record" in first["last_check_error"]
    dns[domain["txt_record_name"]] = ["unrelated", domain["txt_record_value"]]
    second = api.call("POST", f"orgs/{acme.org.pk}/domains/{domain['id']}/verify").json()
    assert second["status"] == "verified" and second["last_check_error"] == ""
    assert AuditEvent.objects.filter(org_id=acme.org.pk, action="domain.verified").count() == 1


def test_a_domain_verified_by_one_org_cannot_be_claimed_by_another(acme, globex, api_for, dns):
    a, g = api_for(acme.org), api_for(globex.org)
    mine = a.call("POST", f"orgs/{acme.org.pk}/domains", {"name": "shared.example"}).json()
    dns[mine["txt_record_name"]] = [mine["txt_record_value"]]
    assert a.call("POST", f"orgs/{acme.org.pk}/domains/{mine['id']}/verify").json()["status"] == "verified"
    theirs = g.call("POST", f"orgs/{globex.org.pk}/domains", {"name": "shared.example"}).json()
    dns[theirs["txt_record_name"]] = [mine["txt_record_value"], theirs["txt_record_value"]]
    res = g.call("POST", f"orgs/{globex.org.pk}/domains/{theirs['id']}/verify").json()
    assert res["status"] == "pending" and "Another organisation" in res["last_check_error"]


def test_dns_failures_are_reported_not_raised(acme, api_for, settings):
    settings.PLAZA_DNS_RESOLVER = "tests.orgs.test_domains.BrokenResolver"
    api = api_for(acme.org)
    domain = api.call("POST", f"orgs/{acme.org.pk}/domains", {"name": "broken.example"}).json()
    res = api.call("POST", f"orgs/{acme.org.pk}/domains/{domain['id']}/verify")
    assert res.status_code == 200 and "DNS lookup" in res.json()["last_check_error"]


class BrokenResolver:
    def txt(self, name):
        from apps.orgs.dns import DnsLookupError

        raise DnsLookupError(f"DNS lookup of {name} failed: Timeout")
