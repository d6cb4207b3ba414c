from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from django.conf import settings

from loyalty.common.links import absolute_url, on_site, site
from partners.security import must_use_totp


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # People join only through an invitation link (partners.views.invitation_accept).
        return False

    def pre_authenticate(self, request, **credentials):
        # allauth would count failed passwords per e-mail alone and lock the person out for everyone; django-axes
        # counts them per e-mail and client address (settings: AXES_*).
        pass

    def send_mail(self, template_prefix, email, context):
        # Mails tell people whom to ask (templates/account/email/unknown_account_message.txt).
        super().send_mail(
            template_prefix,
            email,
            {**context, "program_contact_email": settings.PROGRAM_CONTACT_EMAIL, "current_site": site()},
        )

    # allauth builds e-mailed links from the request's host; ours come from SITE_URL like every other message's.
    def get_reset_password_from_key_url(self, key):
        return on_site(super().get_reset_password_from_key_url(key))

    def get_email_confirmation_url(self, request, emailconfirmation):
        return absolute_url("account_confirm_email", emailconfirmation.key)


class MFAAdapter(DefaultMFAAdapter):
    def can_delete_authenticator(self, authenticator):
        # Staff must keep their authenticator app (partners.security). For a new phone, a program manager removes
        # the old one in the back office and they set up the new one when they next sign in.
        return not must_use_totp(authenticator.user)
