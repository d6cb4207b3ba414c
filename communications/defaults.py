# ruff: noqa: E501  (the default texts read best one message per line)
"""The words every kind of message starts with, in English and German: the data migration stores them as
MessageTemplate rows (the program team edits them in the admin), and `ensure_default_templates` puts back any
that are missing. E-mail and the inbox get subject and body; an SMS is the subject
(the sender appends the link)."""

from communications.constants import Channel, Kind

_SIGNATURE = {"en": "Your partner program team", "de": "Ihr Partnerprogramm-Team"}

# kind: {language: (subject, body)}
TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    Kind.INVITATION: {
        "en": ("{% if reminder %}Reminder: {% endif %}{{ invited_by }} invited you to the partner program", "Join {{ partner_name }}'s team and earn points for your sales.{% if reminder %} Your invitation is still open: use the link in the invitation e-mail by {{ expires_on|date }}.{% else %} Sign up with the link below by {{ expires_on|date }}.{% endif %}"),
        "de": ("{% if reminder %}Erinnerung: {% endif %}{{ invited_by }} hat Sie zum Partnerprogramm eingeladen", "Treten Sie dem Team von {{ partner_name }} bei und sammeln Sie Punkte für Ihre Verkäufe.{% if reminder %} Ihre Einladung gilt noch: Nutzen Sie den Link in der Einladungs-E-Mail bis zum {{ expires_on|date }}.{% else %} Melden Sie sich bis zum {{ expires_on|date }} über den folgenden Link an.{% endif %}"),
    },
    Kind.MEMBER_APPROVED: {
        "en": ("Welcome to the partner program", "Your place in {{ partner_name }}'s team is confirmed. You can now claim sales and collect points."),
        "de": ("Willkommen im Partnerprogramm", "Ihre Mitgliedschaft im Team von {{ partner_name }} ist bestätigt. Sie können jetzt Verkäufe melden und Punkte sammeln."),
    },
    Kind.MEMBER_DEACTIVATED: {
        "en": ("Your membership has ended", "Your membership of {{ partner_name }}'s team has ended.{% if reason %} Reason: {{ reason }}{% endif %}"),
        "de": ("Ihre Mitgliedschaft wurde beendet", "Ihre Mitgliedschaft im Team von {{ partner_name }} wurde beendet.{% if reason %} Grund: {{ reason }}{% endif %}"),
    },
    Kind.CLAIM_APPROVED: {
        "en": ("Claim {{ invoice_number }} approved: {{ points|intcomma }} points", "Your claim for invoice {{ invoice_number }} was approved. You earned {{ points|intcomma }} points.\n{{ explanation }}"),
        "de": ("Meldung {{ invoice_number }} genehmigt: {{ points|intcomma }} Punkte", "Ihre Meldung zur Rechnung {{ invoice_number }} wurde genehmigt. Sie haben {{ points|intcomma }} Punkte erhalten.\n{{ explanation }}"),
    },
    Kind.CLAIM_REJECTED: {
        "en": ("Claim {{ invoice_number }} needs a correction", "Your claim for invoice {{ invoice_number }} was rejected: {{ reason }}\nCorrect it and send it again by {{ deadline|date }}."),
        "de": ("Meldung {{ invoice_number }} muss korrigiert werden", "Ihre Meldung zur Rechnung {{ invoice_number }} wurde abgelehnt: {{ reason }}\nKorrigieren Sie sie und senden Sie sie bis {{ deadline|date }} erneut."),
    },
    Kind.CLAIM_COLLEAGUE: {
        "en": ("{{ colleague }} named you on claim {{ invoice_number }}", "{{ colleague }} named you on claim {{ invoice_number }}; you share its points once it is approved. Open it to see your share."),
        "de": ("{{ colleague }} hat Sie in Meldung {{ invoice_number }} genannt", "{{ colleague }} hat Sie in der Meldung {{ invoice_number }} genannt; Sie erhalten einen Anteil an ihren Punkten, sobald sie genehmigt ist. Öffnen Sie sie, um Ihren Anteil zu sehen."),
    },
    Kind.POINTS_IMPORTED: {
        "en": ("You earned {{ points|intcomma }} points", "Your distributor reported {{ lines|intcomma }} sale line{{ lines|pluralize }}: {{ points|intcomma }} points for you."),
        "de": ("Sie haben {{ points|intcomma }} Punkte erhalten", "Ihr Großhändler hat {{ lines|intcomma }} Verkaufszeile(n) gemeldet: {{ points|intcomma }} Punkte für Sie."),
    },
    Kind.ADJUSTMENT_POSTED: {
        "en": ("Your points were adjusted: {{ points|intcomma }}", "The program team adjusted your points by {{ points|intcomma }}. {{ reason }}"),
        "de": ("Ihre Punkte wurden angepasst: {{ points|intcomma }}", "Das Programmteam hat Ihre Punkte um {{ points|intcomma }} angepasst. {{ reason }}"),
    },
    Kind.TIER_UP: {
        "en": ("{{ partner_name }} reached {{ tier }}", "Congratulations: {{ partner_name }} moved up from {{ previous_tier|default:'no tier' }} to {{ tier }}."),
        "de": ("{{ partner_name }} hat {{ tier }} erreicht", "Glückwunsch: {{ partner_name }} ist von {{ previous_tier|default:'keiner Stufe' }} auf {{ tier }} aufgestiegen."),
    },
    Kind.TIER_DOWN: {
        "en": ("{{ partner_name }} is now {{ tier }}", "{{ partner_name }} moved from {{ previous_tier }} to {{ tier }} at the end of the period."),
        "de": ("{{ partner_name }} ist jetzt {{ tier }}", "{{ partner_name }} ist zum Periodenende von {{ previous_tier }} auf {{ tier }} gewechselt."),
    },
    Kind.TIER_KEEP: {
        "en": ("Keep {{ tier }}: {{ missing }} to go", "To keep {{ tier }} after {{ period_end|date }}, {{ partner_name }} needs {{ missing }} more."),
        "de": ("{{ tier }} halten: noch {{ missing }}", "Um {{ tier }} nach dem {{ period_end|date }} zu halten, braucht {{ partner_name }} noch {{ missing }}."),
    },
    Kind.POINTS_EXPIRING: {
        "en": ("{{ points|intcomma }} points expire on {{ expires_on|date }}", "Redeem them for a reward before {{ expires_on|date }}."),
        "de": ("{{ points|intcomma }} Punkte verfallen am {{ expires_on|date }}", "Lösen Sie sie vor dem {{ expires_on|date }} gegen eine Prämie ein."),
    },
    Kind.ORDER_APPROVED: {
        "en": ("Order {{ order_number }} approved", "Your order {{ order_number }} ({{ points|intcomma }} points) was approved and is being prepared."),
        "de": ("Bestellung {{ order_number }} genehmigt", "Ihre Bestellung {{ order_number }} ({{ points|intcomma }} Punkte) wurde genehmigt und wird vorbereitet."),
    },
    Kind.ORDER_SHIPPED: {
        "en": ("Order {{ order_number }} shipped", "Your order {{ order_number }} is on its way.{% if tracking_number %} Tracking: {{ carrier }} {{ tracking_number }}{% endif %}"),
        "de": ("Bestellung {{ order_number }} versandt", "Ihre Bestellung {{ order_number }} ist unterwegs.{% if tracking_number %} Sendungsverfolgung: {{ carrier }} {{ tracking_number }}{% endif %}"),
    },
    Kind.ORDER_DELIVERED: {
        "en": ("Order {{ order_number }} delivered", "Your order {{ order_number }} was delivered. Enjoy it!"),
        "de": ("Bestellung {{ order_number }} zugestellt", "Ihre Bestellung {{ order_number }} wurde zugestellt. Viel Freude damit!"),
    },
    Kind.ORDER_REJECTED: {
        "en": ("Order {{ order_number }} rejected", "Your order {{ order_number }} was rejected: {{ reason }}\n{{ refunded_points|intcomma }} points are back in your account."),
        "de": ("Bestellung {{ order_number }} abgelehnt", "Ihre Bestellung {{ order_number }} wurde abgelehnt: {{ reason }}\n{{ refunded_points|intcomma }} Punkte wurden Ihrem Konto gutgeschrieben."),
    },
    Kind.ORDER_CANCELLED: {
        "en": ("Order {{ order_number }} cancelled", "Your order {{ order_number }} was cancelled: {{ reason }}\n{{ refunded_points|intcomma }} points are back in your account."),
        "de": ("Bestellung {{ order_number }} storniert", "Ihre Bestellung {{ order_number }} wurde storniert: {{ reason }}\n{{ refunded_points|intcomma }} Punkte wurden Ihrem Konto gutgeschrieben."),
    },
    Kind.VOUCHER_READY: {
        "en": ("Your code for {{ reward }} is ready", "The voucher code of order {{ order_number }} is waiting for you on the order's page."),
        "de": ("Ihr Code für {{ reward }} ist bereit", "Der Gutscheincode der Bestellung {{ order_number }} wartet auf der Seite der Bestellung auf Sie."),
    },
    Kind.FEEDBACK_ANSWERED: {
        "en": ("We answered your message: {{ subject }}", "The program team answered your message."),
        "de": ("Wir haben Ihre Nachricht beantwortet: {{ subject }}", "Das Programmteam hat Ihre Nachricht beantwortet."),
    },
    Kind.CAMPAIGN: {
        "en": ("{{ title }}", "{{ message }}"),
        "de": ("{{ title }}", "{{ message }}"),
    },
    Kind.SURVEY: {
        "en": ("Your opinion: {{ title }}", "Please take a minute to answer our survey \"{{ title }}\"."),
        "de": ("Ihre Meinung: {{ title }}", "Bitte nehmen Sie sich eine Minute für unsere Umfrage „{{ title }}“."),
    },
    Kind.NUDGE_INACTIVE: {
        "en": ("We have not heard from you in a while", "You have not earned, claimed or redeemed anything in the partner program for {{ days }} days. Claim your latest sales, or see what your points get you."),
        "de": ("Lange nichts von Ihnen gehört", "Sie haben seit {{ days }} Tagen im Partnerprogramm nichts gesammelt, gemeldet oder eingelöst. Melden Sie Ihre letzten Verkäufe oder sehen Sie, was Ihre Punkte Ihnen bringen."),
    },
    Kind.CERTIFICATE_ISSUED: {
        "en": ("You are certified on {{ product_line }}", "You passed every module of “{{ course }}”: you are certified on {{ product_line }} until {{ expires_on|date }}. Download your certificate from the Learn page."),
        "de": ("Sie sind für {{ product_line }} zertifiziert", "Sie haben alle Module von „{{ course }}“ bestanden: Sie sind bis {{ expires_on|date }} für {{ product_line }} zertifiziert. Ihr Zertifikat finden Sie auf der Seite „Lernen“."),
    },
    Kind.CERTIFICATE_EXPIRING: {
        "en": ("Your {{ product_line }} certificate expires on {{ expires_on|date }}", "Pass “{{ course }}” again before {{ expires_on|date }} to stay certified on {{ product_line }} and keep what the certificate earns you."),
        "de": ("Ihr Zertifikat für {{ product_line }} läuft am {{ expires_on|date }} ab", "Bestehen Sie „{{ course }}“ vor dem {{ expires_on|date }} erneut, um für {{ product_line }} zertifiziert zu bleiben und die Vorteile des Zertifikats zu behalten."),
    },
    Kind.CHALLENGE_STARTED: {
        "en": ("New challenge: {{ challenge }}", "{{ challenge }} has started: {{ goals }} by {{ ends_on|date }}.{% if points %} Completing it earns {{ points|intcomma }} points.{% endif %}"),
        "de": ("Neue Challenge: {{ challenge }}", "{{ challenge }} hat begonnen: {{ goals }} bis {{ ends_on|date }}.{% if points %} Wer sie schafft, erhält {{ points|intcomma }} Punkte.{% endif %}"),
    },
    Kind.CHALLENGE_HALFWAY: {
        "en": ("Halfway there: {{ challenge }}", "You have reached {{ percent }} % of {{ challenge }}. Keep going: it ends on {{ ends_on|date }}."),
        "de": ("Halbzeit: {{ challenge }}", "Sie haben {{ percent }} % von {{ challenge }} erreicht. Weiter so: Die Challenge endet am {{ ends_on|date }}."),
    },
    Kind.CHALLENGE_COMPLETED: {
        "en": ("Challenge completed: {{ challenge }}", "You completed {{ challenge }}.{% if points %} {{ points|intcomma }} points are yours.{% endif %}"),
        "de": ("Challenge geschafft: {{ challenge }}", "Sie haben {{ challenge }} geschafft.{% if points %} {{ points|intcomma }} Punkte gehören Ihnen.{% endif %}"),
    },
    Kind.CHALLENGE_RESULTS: {
        "en": ("Results of {{ challenge }}: rank {{ rank }}", "{{ challenge }} has ended: rank {{ rank }} of {{ participants }}.{% if prize %} Your prize: {{ prize }}.{% endif %}"),
        "de": ("Ergebnis von {{ challenge }}: Platz {{ rank }}", "{{ challenge }} ist beendet: Platz {{ rank }} von {{ participants }}.{% if prize %} Ihr Preis: {{ prize }}.{% endif %}"),
    },
    Kind.REFERRAL_DECIDED: {
        "en": ("{% if converted %}Your referral {{ company }} became a customer{% else %}Your referral {{ company }} was not taken up{% endif %}", "{% if converted %}Thank you: {{ company }} is now a customer.{% if points %} You earned {{ points|intcomma }} points.{% endif %}{% else %}{{ company }} did not become a customer. {{ reason }}{% endif %}"),
        "de": ("{% if converted %}Ihre Empfehlung {{ company }} ist Kunde geworden{% else %}Ihre Empfehlung {{ company }} wurde nicht angenommen{% endif %}", "{% if converted %}Vielen Dank: {{ company }} ist jetzt Kunde.{% if points %} Sie haben {{ points|intcomma }} Punkte erhalten.{% endif %}{% else %}{{ company }} ist nicht Kunde geworden. {{ reason }}{% endif %}"),
    },
    Kind.RETURN_DECIDED: {
        "en": ("{% if confirmed %}Return confirmed: {{ units }} × {{ what }}{% else %}Return not confirmed: {{ units }} × {{ what }}{% endif %}", "{% if confirmed %}Your return of {{ units }} × {{ what }} was confirmed.{% if points %} You earned {{ points|intcomma }} points.{% endif %}{% else %}Your return of {{ units }} × {{ what }} was not confirmed.{% endif %} {{ reason }}"),
        "de": ("{% if confirmed %}Rückgabe bestätigt: {{ units }} × {{ what }}{% else %}Rückgabe nicht bestätigt: {{ units }} × {{ what }}{% endif %}", "{% if confirmed %}Ihre Rückgabe von {{ units }} × {{ what }} wurde bestätigt.{% if points %} Sie haben {{ points|intcomma }} Punkte erhalten.{% endif %}{% else %}Ihre Rückgabe von {{ units }} × {{ what }} wurde nicht bestätigt.{% endif %} {{ reason }}"),
    },
    Kind.MDF_DECIDED: {
        "en": ("Co-marketing: {{ activity }} is {{ status }}", "Your co-marketing request “{{ activity }}” is now: {{ status }}.{% if amount %} Amount: {{ amount }}.{% endif %} {{ reason }}"),
        "de": ("Co-Marketing: {{ activity }} ist {{ status }}", "Ihr Co-Marketing-Antrag „{{ activity }}“ hat jetzt den Status: {{ status }}.{% if amount %} Betrag: {{ amount }}.{% endif %} {{ reason }}"),
    },
    Kind.DRAW_RESULT: {
        "en": ("{% if won %}You won in {{ draw }}{% else %}Results of {{ draw }}{% endif %}", "{% if won %}Congratulations: you won {{ prize }} in {{ draw }}.{% else %}{{ draw }} has been drawn; this time you did not win.{% endif %} You held {{ entries }} entr{{ entries|pluralize:'y,ies' }}. Anyone can check the draw on its page."),
        "de": ("{% if won %}Sie haben bei {{ draw }} gewonnen{% else %}Ergebnis von {{ draw }}{% endif %}", "{% if won %}Glückwunsch: Sie haben {{ prize }} bei {{ draw }} gewonnen.{% else %}{{ draw }} wurde ausgelost; diesmal haben Sie nicht gewonnen.{% endif %} Sie hatten {{ entries }} Los(e). Jeder kann die Auslosung auf ihrer Seite nachprüfen."),
    },
    Kind.CLUB_RENEWAL: {
        "en": ("Your {{ tier }} membership ends on {{ ends_on }}", "Your company's {{ tier }} membership ends on {{ ends_on }}. Renew it for {{ fee }} to keep its benefits: the new year starts the day after, so renewing early loses nothing."),
        "de": ("Ihre {{ tier }}-Mitgliedschaft endet am {{ ends_on }}", "Die {{ tier }}-Mitgliedschaft Ihres Unternehmens endet am {{ ends_on }}. Verlängern Sie sie für {{ fee }}, um die Vorteile zu behalten: Das neue Jahr beginnt am Tag danach, eine frühe Verlängerung kostet Sie also keinen Tag."),
    },
}  # fmt: skip


def _greeting(kind: str, language: str) -> str:
    # An invited person has no name yet (first_name would be their e-mail address).
    if kind == Kind.INVITATION:
        return "Guten Tag," if language == "de" else "Hello,"
    return "Hallo {{ first_name }}," if language == "de" else "Hello {{ first_name }},"


def default_rows() -> list[dict]:
    """Every default template as MessageTemplate field values (role: any)."""
    rows = []
    for kind, languages in TEXTS.items():
        for language, (subject, body) in languages.items():
            greeting = _greeting(kind, language)
            long_body = f"{greeting}\n\n{body}\n\n{{% if link %}}{{{{ link }}}}\n\n{{% endif %}}{_SIGNATURE[language]}"
            rows += [
                {"kind": kind, "channel": Channel.EMAIL, "language": language, "subject": subject, "body": long_body},
                {"kind": kind, "channel": Channel.INBOX, "language": language, "subject": subject, "body": body},
                {"kind": kind, "channel": Channel.SMS, "language": language, "subject": "", "body": subject},
            ]
    return rows


def ensure_default_templates(message_template_model) -> int:
    """Create the default templates that are missing (by kind, channel and language, role: any); returns how many.
    Takes the model so the data migration can pass its historical one."""
    existing = set(message_template_model.objects.filter(role__isnull=True).values_list("kind", "channel", "language"))
    # A historical model knows only the kinds of its time; a later kind's rows come with the migration adding it.
    known = {value for value, _label in message_template_model._meta.get_field("kind").choices}
    missing = [
        row
        for row in default_rows()
        if row["kind"] in known and (row["kind"], row["channel"], row["language"]) not in existing
    ]
    message_template_model.objects.bulk_create([message_template_model(**row) for row in missing])
    return len(missing)
