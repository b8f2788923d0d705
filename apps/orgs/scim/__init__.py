"""SCIM 2.0 (RFC 7643/7644) provisioning at /scim/v2/ with an organisation's SCIM token."""
