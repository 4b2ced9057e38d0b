from allauth.account.adapter import DefaultAccountAdapter

from spm.models import normalize_email


class AccountAdapter(DefaultAccountAdapter):
    def clean_email(self, email: str) -> str:
        return normalize_email(super().clean_email(email))

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            from spm.services import memberships_link_user

            memberships_link_user(user=user)
        return user
