"""SCIM 2.0 endpoints (RFC 7644) under ``/scim/v2/``, authenticated by an organisation's SCIM token.

A SCIM token is an ordinary API token (hashing, expiry, revocation, IP allowlist) of a service
account whose role allows ``scim.provision`` and whose scopes include ``scim:write``. Everything a
token sees or changes belongs to that token's organisation; another organisation's ids answer 404.
Every error is a SCIM Error body, every body ``application/scim+json``; no input answers 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from django.core.exceptions import RequestDataTooBig
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django_scim.constants import SCIM_CONTENT_TYPE

from apps.core import context
from apps.core.errors import PlazaError
from apps.core.http import client_ip
from apps.core.ids import is_valid_id
from apps.orgs.models import Group, Membership, MemberSource, Organization
from apps.orgs.policy import Principal, authorize
from apps.orgs.scim import discovery, filters
from apps.orgs.scim.errors import ScimError, bad_request, error_response, from_plaza_error
from apps.orgs.scim.patch import apply_operations
from apps.orgs.scim.resources import group_doc, parse_group, parse_user, project, user_doc, writable
from apps.orgs.scim.schema import GROUP, LIST_RESPONSE, MAX_RESULTS, PATCH_OP, SEARCH_REQUEST, USER, check_schemas
from apps.orgs.services import groups as group_services
from apps.orgs.services import provisioning
from apps.orgs.services.credentials import token_authenticate

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_FILTERED_ROWS = 10_000  # rows a filter the database cannot answer is evaluated on


class Call:
    """One authenticated SCIM request: who, for which organisation, and where it is served."""

    def __init__(self, request: HttpRequest, principal: Principal, org: Organization):
        self.request = request
        self.principal = principal
        self.org = org
        self.base = request.build_absolute_uri("/scim/v2/")
        self._body = None

    @property
    def body(self) -> dict:
        if self._body is None:
            self._body = _parse_body(self.request)
        return self._body


# --- plumbing ----------------------------------------------------------------------------------
def _respond(doc, status: int = 200, *, location: str = "", etag: str = "") -> HttpResponse:
    response = HttpResponse(json.dumps(doc), status=status, content_type=SCIM_CONTENT_TYPE)
    if location:
        response["Location"] = location
    if etag:
        response["ETag"] = etag
    return response


def _check_depth(value, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise bad_request(f"The body is nested more than {MAX_DEPTH} levels deep.", "invalidSyntax")
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise bad_request("Attribute names must not contain NUL characters.", "invalidSyntax")
            _check_depth(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_depth(item, depth + 1)


def _parse_body(request: HttpRequest) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ScimError(413, f"The request body is over {MAX_BODY_BYTES} bytes.") from None
    if len(raw) > MAX_BODY_BYTES:
        raise ScimError(413, f"The request body is over {MAX_BODY_BYTES} bytes.")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise bad_request("The request body is not valid JSON.", "invalidSyntax") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", "invalidSyntax")
    _check_depth(body)
    return body


def _authenticate(request: HttpRequest) -> tuple[Principal, Organization]:
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise ScimError(401, "Send the organisation's SCIM token as 'Authorization: Bearer plz_…'.")
    token = token_authenticate(raw.strip())
    if token is None:
        raise ScimError(401, "The token is invalid, expired or revoked.")
    sa = token.service_account
    principal = Principal(
        kind="service_account", service_account=sa, token=token, scopes=frozenset(token.scopes), ip=client_ip(request)
    )
    context.update(actor_type="service_account", actor_id=sa.pk, actor_label=f"{sa.name} ({token.pk})")
    org = sa.org
    try:
        authorize(principal, "scim.provision", org)
    except PlazaError as exc:
        raise from_plaza_error(exc) from None
    return principal, org


def scim_endpoint(methods: dict[str, Callable]):
    """A view that authenticates, dispatches on the method and turns every failure into a SCIM error."""

    @csrf_exempt
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        try:
            principal, org = _authenticate(request)
            handler = methods.get(request.method)
            if handler is None:
                response = error_response(ScimError(405, f"{request.method} is not allowed here."))
                response["Allow"] = ", ".join(methods)
                return response
            call = Call(request, principal, org)
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                with transaction.atomic():
                    return handler(call, **kwargs)
            return handler(call, **kwargs)
        except ScimError as exc:
            return error_response(exc)
        except PlazaError as exc:
            return error_response(from_plaza_error(exc))
        except RequestDataTooBig:
            return error_response(ScimError(413, f"The request body is over {MAX_BODY_BYTES} bytes."))
        except RecursionError:
            return error_response(bad_request("The request is nested too deeply.", "invalidSyntax"))
        except Exception:
            logger.exception("SCIM request failed")
            return error_response(ScimError(500, "The request could not be completed."))

    return view


def _param(call: Call, name: str):
    source = call.body if call.request.method == "POST" else call.request.GET
    for key in source:
        if key.lower() == name.lower():
            return source[key]
    return None


def _int_param(value, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise bad_request(f"{name} must be an integer.")
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request(f"{name} must be an integer.") from None


MAX_START_INDEX = 2**31 - 1


def _page_params(call: Call) -> tuple[int, int]:
    # RFC 7644 §3.4.2.4: below 1 means 1; far past the end is simply an empty page (and must not
    # reach the database as an offset it cannot hold)
    start = min(max(1, _int_param(_param(call, "startIndex"), "startIndex", 1)), MAX_START_INDEX)
    count = _int_param(_param(call, "count"), "count", 100)
    return start, min(max(count, 0), MAX_RESULTS)


def _list_response(call: Call, docs: list[dict], total: int, start: int, schema_id: str | None) -> HttpResponse:
    attributes, excluded = _param(call, "attributes"), _param(call, "excludedAttributes")
    resources = [project(d, attributes, excluded, schema_id or d["schemas"][0]) for d in docs]
    return _respond(
        {
            "schemas": [LIST_RESPONSE],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": len(resources),
            "Resources": resources,
        }
    )


def _single(call: Call, doc: dict, schema_id: str, status: int = 200) -> HttpResponse:
    attributes = call.request.GET.get("attributes")
    excluded = call.request.GET.get("excludedAttributes")
    body = project(doc, attributes, excluded, schema_id)
    return _respond(body, status, location=doc["meta"]["location"], etag=doc["meta"]["version"])


def _check_if_match(call: Call, doc: dict) -> None:
    wanted = call.request.headers.get("If-Match")
    if wanted is None:
        return
    tags = {t.strip() for t in wanted.split(",")}
    current = doc["meta"]["version"]
    if "*" not in tags and current not in tags and current.removeprefix("W/") not in tags:
        raise ScimError(412, f"The resource has changed: its version is {current}.")


def _not_modified(call: Call, doc: dict) -> bool:
    wanted = call.request.headers.get("If-None-Match")
    if wanted is None:
        return False
    tags = {t.strip() for t in wanted.split(",")}
    return "*" in tags or doc["meta"]["version"] in tags or doc["meta"]["version"].removeprefix("W/") in tags


# --- users -------------------------------------------------------------------------------------
def _users(org: Organization):
    return Membership.objects.filter(org=org).select_related("user").prefetch_related("groups").order_by("pk")


def _user(call: Call, member_id: str, *, lock: bool = False) -> Membership:
    if not is_valid_id(member_id, "mem"):
        raise ScimError(404, f"No User {member_id[:60]!r}.")
    qs = _users(call.org)
    if lock:
        qs = qs.select_for_update(of=("self",))
    membership = qs.filter(pk=member_id).first()
    if membership is None:
        raise ScimError(404, f"No User {member_id!r}.")
    return membership


class Found:
    """The resources a list or search selects: ``total`` and ``page(offset, limit)``."""

    def __init__(self, total: int, page: Callable[[int, int], list[dict]]):
        self.total = total
        self.page = page


def _search(call: Call, qs, tree, columns: dict, schema_id: str, to_doc: Callable) -> Found:
    """Select with the database where it can decide (no filter, or a filter made only of
    comparisons :func:`filters.to_q` translates): count and paginate in SQL and build documents
    for the page only. Otherwise narrow in SQL and evaluate the filter on at most
    ``MAX_FILTERED_ROWS`` rows (more is 400 ``tooMany``, RFC 7644 §3.4.2.4)."""
    if tree is not None:
        q, exact = filters.to_q(tree, columns, schema_id, connection.vendor)
        if q is not None:
            qs = qs.filter(q)
    else:
        exact = True
    if exact:
        return Found(qs.count(), lambda offset, limit: [to_doc(r, call.base) for r in qs[offset : offset + limit]])
    if qs.count() > MAX_FILTERED_ROWS:
        raise bad_request(
            f"The filter would be evaluated on more than {MAX_FILTERED_ROWS} resources: narrow it with "
            "userName, externalId, displayName, id or active (eq, ne, sw, co, ew).",
            "tooMany",
        )
    docs = [d for d in (to_doc(r, call.base) for r in qs[: MAX_FILTERED_ROWS + 1]) if filters.matches(tree, d)]
    return Found(len(docs), lambda offset, limit: docs[offset : offset + limit])


def _search_users(call: Call, tree) -> Found:
    return _search(call, _users(call.org), tree, filters.USER_COLUMNS, USER, user_doc)


def _search_groups(call: Call, tree) -> Found:
    return _search(call, _groups(call.org), tree, filters.GROUP_COLUMNS, GROUP, group_doc)


def _search_all(call: Call, tree) -> Found:
    """Users then Groups, one page across both."""
    users_found, groups_found = _search_users(call, tree), _search_groups(call, tree)

    def page(offset: int, limit: int) -> list[dict]:
        docs = users_found.page(offset, limit) if offset < users_found.total and limit > 0 else []
        rest = limit - len(docs)
        if rest > 0:
            docs += groups_found.page(max(0, offset - users_found.total), rest)
        return docs

    return Found(users_found.total + groups_found.total, page)


def _list(call: Call, search: Callable, schema_id: str | None) -> HttpResponse:
    text = _param(call, "filter")
    tree = filters.parse(text) if text is not None else None
    start, count = _page_params(call)
    found = search(call, tree)
    docs = found.page(start - 1, count) if count > 0 else []
    return _list_response(call, docs, found.total, start, schema_id)


def users_list(call: Call) -> HttpResponse:
    return _list(call, _search_users, USER)


def users_create(call: Call) -> HttpResponse:
    body = call.body
    check_schemas(body, USER)
    membership = provisioning.scim_user_create(principal=call.principal, org=call.org, **parse_user(body))
    return _single(call, user_doc(_user(call, membership.pk), call.base), USER, 201)


def user_get(call: Call, rid: str) -> HttpResponse:
    doc = user_doc(_user(call, rid), call.base)
    if _not_modified(call, doc):
        response = HttpResponse(status=304)
        response["ETag"] = doc["meta"]["version"]
        return response
    return _single(call, doc, USER)


def _user_save(call: Call, membership: Membership, body: dict) -> HttpResponse:
    provisioning.scim_user_replace(principal=call.principal, membership=membership, **parse_user(body))
    return _single(call, user_doc(_user(call, membership.pk), call.base), USER)


def user_put(call: Call, rid: str) -> HttpResponse:
    membership = _user(call, rid, lock=True)
    _check_if_match(call, user_doc(membership, call.base))
    body = call.body
    check_schemas(body, USER)
    return _user_save(call, membership, body)


def user_patch(call: Call, rid: str) -> HttpResponse:
    membership = _user(call, rid, lock=True)
    doc = user_doc(membership, call.base)
    _check_if_match(call, doc)
    body = call.body
    check_schemas(body, PATCH_OP)
    changed = apply_operations(writable(doc), body, USER)
    return _user_save(call, membership, changed)


def user_delete(call: Call, rid: str) -> HttpResponse:
    membership = _user(call, rid, lock=True)
    _check_if_match(call, user_doc(membership, call.base))
    provisioning.member_deprovision_delete(principal=call.principal, membership=membership, reason="scim")
    return HttpResponse(status=204)


# --- groups ------------------------------------------------------------------------------------
def _groups(org: Organization):
    return Group.objects.filter(org=org).prefetch_related("members__user").order_by("pk")


def _group(call: Call, group_id: str, *, lock: bool = False) -> Group:
    if not is_valid_id(group_id, "grp"):
        raise ScimError(404, f"No Group {group_id[:60]!r}.")
    qs = _groups(call.org)
    if lock:
        qs = qs.select_for_update(of=("self",))
    group = qs.filter(pk=group_id).first()
    if group is None:
        raise ScimError(404, f"No Group {group_id!r}.")
    return group


def groups_list(call: Call) -> HttpResponse:
    return _list(call, _search_groups, GROUP)


def groups_create(call: Call) -> HttpResponse:
    body = call.body
    check_schemas(body, GROUP)
    fields = parse_group(body, call.org)
    group = group_services.group_create(principal=call.principal, org=call.org, source=MemberSource.SCIM, **fields)
    return _single(call, group_doc(_group(call, group.pk), call.base), GROUP, 201)


def group_get(call: Call, rid: str) -> HttpResponse:
    doc = group_doc(_group(call, rid), call.base)
    if _not_modified(call, doc):
        response = HttpResponse(status=304)
        response["ETag"] = doc["meta"]["version"]
        return response
    return _single(call, doc, GROUP)


def _group_save(call: Call, group: Group, body: dict) -> HttpResponse:
    fields = parse_group(body, call.org)
    group_services.group_update(
        principal=call.principal, group=group, display_name=fields["display_name"], external_id=fields["external_id"]
    )
    group_services.group_set_members(principal=call.principal, group=group, members=fields["members"])
    return _single(call, group_doc(_group(call, group.pk), call.base), GROUP)


def group_put(call: Call, rid: str) -> HttpResponse:
    group = _group(call, rid, lock=True)
    _check_if_match(call, group_doc(group, call.base))
    body = call.body
    check_schemas(body, GROUP)
    return _group_save(call, group, body)


def group_patch(call: Call, rid: str) -> HttpResponse:
    group = _group(call, rid, lock=True)
    doc = group_doc(group, call.base)
    _check_if_match(call, doc)
    body = call.body
    check_schemas(body, PATCH_OP)
    changed = apply_operations(writable(doc), body, GROUP)
    return _group_save(call, group, changed)


def group_delete(call: Call, rid: str) -> HttpResponse:
    group = _group(call, rid, lock=True)
    _check_if_match(call, group_doc(group, call.base))
    group_services.group_delete(principal=call.principal, group=group)
    return HttpResponse(status=204)


# --- search, discovery, the rest -----------------------------------------------------------------
def _search_body(call: Call) -> None:
    check_schemas(call.body, SEARCH_REQUEST)


def users_search(call: Call) -> HttpResponse:
    _search_body(call)
    return _list(call, _search_users, USER)


def groups_search(call: Call) -> HttpResponse:
    _search_body(call)
    return _list(call, _search_groups, GROUP)


def root_search(call: Call) -> HttpResponse:
    _search_body(call)
    return _list(call, _search_all, None)


def _no_filter(call: Call) -> None:
    if "filter" in call.request.GET:
        # RFC 7644 §4: filtering discovery endpoints SHOULD be refused with 403.
        raise ScimError(403, "Discovery endpoints cannot be filtered.")


def service_provider_config(call: Call) -> HttpResponse:
    _no_filter(call)
    return _respond(discovery.service_provider_config(call.base))


def schemas_list(call: Call) -> HttpResponse:
    _no_filter(call)
    docs = discovery.schemas(call.base)
    return _respond(discovery.list_of(docs))


def schema_get(call: Call, rid: str) -> HttpResponse:
    for doc in discovery.schemas(call.base):
        if doc["id"] == rid:
            return _respond(doc)
    raise ScimError(404, f"No schema {rid[:200]!r}.")


def resource_types_list(call: Call) -> HttpResponse:
    _no_filter(call)
    return _respond(discovery.list_of(discovery.resource_types(call.base)))


def resource_type_get(call: Call, rid: str) -> HttpResponse:
    for doc in discovery.resource_types(call.base):
        if doc["id"] == rid:
            return _respond(doc)
    raise ScimError(404, f"No resource type {rid[:200]!r}.")


def not_implemented(call: Call, **kwargs) -> HttpResponse:
    raise ScimError(501, "Not supported: see /scim/v2/ServiceProviderConfig.")


def not_found(call: Call, **kwargs) -> HttpResponse:
    raise ScimError(404, "No such SCIM endpoint.")


_ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

users = scim_endpoint({"GET": users_list, "POST": users_create})
user = scim_endpoint({"GET": user_get, "PUT": user_put, "PATCH": user_patch, "DELETE": user_delete})
users_dot_search = scim_endpoint({"POST": users_search})
groups = scim_endpoint({"GET": groups_list, "POST": groups_create})
group = scim_endpoint({"GET": group_get, "PUT": group_put, "PATCH": group_patch, "DELETE": group_delete})
groups_dot_search = scim_endpoint({"POST": groups_search})
dot_search = scim_endpoint({"POST": root_search})
sp_config = scim_endpoint({"GET": service_provider_config})
schemas = scim_endpoint({"GET": schemas_list})
schema = scim_endpoint({"GET": schema_get})
resource_types = scim_endpoint({"GET": resource_types_list})
resource_type = scim_endpoint({"GET": resource_type_get})
unsupported = scim_endpoint(dict.fromkeys(_ANY, not_implemented))
unknown = scim_endpoint(dict.fromkeys(_ANY, not_found))
