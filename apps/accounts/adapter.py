from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        """Self-service signup can be closed (PLAZA_SIGNUP_OPEN=false), e.g. for an invite-only portal."""
        return settings.PLAZA_SIGNUP_OPEN

    def add_message(self, request, level, message_template=None, message_context=None, extra_tags="", message=None):
        # "Signed in as …" would be wrong while the second factor is still to come.
        if message_template == "account/messages/logged_in.txt" and request.session.get("plaza_mfa"):
            return
        super().add_message(request, level, message_template, message_context, extra_tags, message)
