"""Single sign-on per organisation: OpenID Connect through django-allauth, routing by verified
e-mail domain, just-in-time membership, and the SSO-required policy."""
