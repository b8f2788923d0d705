"""One row of the authorization table (tests/orgs/test_authorization.py): an API operation, the
policy actions it checks and what an allowed caller gets."""

from __future__ import annotations

from dataclasses import dataclass

API = "/api/v1"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # exactly as in the OpenAPI schema
    actions: tuple[str, ...] = ()  # policy actions checked, in order; () for endpoints outside an org
    ok: int = 200
    body: dict | None = None
    users_only: bool = False  # refused to service accounts whatever their role (code users_only)
    staff: bool = False  # platform staff only: the caller's organisation is made the platform organisation
    public: bool = False  # needs no credentials (the storefront); credentials that are sent must be valid
    tokens_only: bool = False  # refused to browser sessions (code token_required): event ingestion

    @property
    def id(self) -> str:
        return f"{self.method} {self.path.removeprefix(API)}"

    @property
    def org_scoped(self) -> bool:
        return "{org_id}" in self.path

    @property
    def placeholders(self) -> list[str]:
        return [part[1:-1] for part in self.path.split("/") if part.startswith("{")]

    def url(self, ids: dict) -> str:
        return self.path.format(**ids)


ORG = f"{API}/orgs/{{org_id}}"
