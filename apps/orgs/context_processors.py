from apps.orgs.selectors import memberships_for_user


def current_org(request) -> dict:
    """The org switcher's list (one query) for signed-in pages."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"nav_memberships": memberships_for_user(user)}
