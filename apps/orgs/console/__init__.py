"""The enterprise admin console: members (source, MFA state, last sign-in), groups, and the audit
log filtered to identity events."""
