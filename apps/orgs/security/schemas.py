from __future__ import annotations

import datetime as dt

from ninja import Schema


class OrgSessionOut(Schema):
    id: str
    user_id: str
    member_id: str | None
    email: str
    ip: str | None
    user_agent: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


class MemberSignOutOut(Schema):
    sessions_ended: int


class MemberMfaResetOut(Schema):
    devices_removed: int
    sessions_ended: int
