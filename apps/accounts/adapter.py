from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """Self-service signup can be closed (PLAZA_SIGNUP_OPEN=false), e.g. for an invite-only portal."""
        return settings.PLAZA_SIGNUP_OPEN
