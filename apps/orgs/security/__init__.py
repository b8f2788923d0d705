"""Enforced security policy: MFA enrolment, session age and idle limits, forced sign-out, factor
resets and the IP allowlist, for sessions and tokens."""
