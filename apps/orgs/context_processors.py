from django.utils.functional import SimpleLazyObject

from apps.orgs.selectors import nav_memberships_for_user


def current_org(request) -> dict:
    """The org switcher's list (one query, made only when a template uses it) for signed-in pages:
    the user's organisations and the sandbox tenants of the publishers among them."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_memberships": SimpleLazyObject(lambda: nav_memberships_for_user(user))}
