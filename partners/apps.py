from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from partners.language import note_language_at_login
        from partners.security import note_totp_at_login

        user_logged_in.connect(note_totp_at_login, dispatch_uid="partners.note_totp_at_login")
        user_logged_in.connect(note_language_at_login, dispatch_uid="partners.note_language_at_login")
