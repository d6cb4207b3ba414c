"""The demo's communications (issue #11, "Demo"): a tip pool, two past campaigns with their reach, an NPS survey
with answers and feedback with answers. Templates come from migration 0002; the inbox messages of the demo logins
from the services the rest of the demo goes through.

Nothing is faked: the campaigns are sent by campaign_send, their e-mails and SMS by delivery_send (the task's
body), opens and clicks arrive through delivery_track (the provider's report), inbox reads through
inbox_mark_read, answers through survey_answer and feedback through feedback_send and feedback_answer. The past
comes from a clock: while a step runs, `timezone.now()` is its moment. What members did after a campaign (its
reach) is the points history loyalty's demo wrote before; each campaign's day is the first candidate on which the
told group acted more than the control group, which did act too.

All in one transaction; a second run finds the demo's first campaign and does nothing (one query).
"""

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from unittest import mock
from zoneinfo import ZoneInfo

from anymail.signals import EventType
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from communications import campaigns, feedback, inbox, sending, surveys, tracking
from communications.constants import Channel, DeliveryStatus, FeedbackTopic, Kind, QuestionKind, SurveyStatus
from communications.models import (
    Campaign,
    CampaignMessage,
    CampaignRecipient,
    Delivery,
    Feedback,
    Question,
    Response,
    Survey,
    Tip,
)
from partners import demo as partners_demo
from partners.constants import MemberStatus, PartnerKind
from partners.models import Member, Role, User

SURVEY_TABLES = (("surveys", Survey), ("survey responses", Response))
TABLES = (
    ("tips", Tip),
    ("campaigns", Campaign),
    ("campaign recipients", CampaignRecipient),
    *SURVEY_TABLES,
    ("feedback messages", Feedback),
    ("deliveries", Delivery),
)

# (text, link, role code, product line code, language); blank: any.
TIPS = (
    ("Did you know? Every AquaSoft installation you claim earns points for you and your company.", "/claims/new/",
     "", "softeners", ""),
    ("Tipp: Jede AquaSoft-Installation, die Sie einreichen, bringt Ihnen und Ihrer Firma Punkte.", "/claims/new/",
     "", "softeners", "de"),
    ("Did you know? A photo of the installed softener's type plate makes your claim go through faster.",
     "/claims/new/", "foreman", "softeners", ""),
    ("Did you know? RO membranes sold with a service contract earn a bonus on renewal.", "/claims/", "sales",
     "reverse-osmosis", ""),
    ("Did you know? UV lamp changes count as service visits: claim them too.", "/claims/new/", "engineer",
     "uv-disinfection", ""),
    ("Did you know? Your points can pay for tools and workwear in the rewards catalogue.", "/rewards/", "", "", ""),
    ("Wussten Sie schon? Mit Ihren Punkten bezahlen Sie Werkzeug und Arbeitskleidung im Prämienkatalog.",
     "/rewards/", "", "", "de"),
    ("Did you know? As an owner you can see what your whole team earned.", "/", "owner", "", ""),
)  # fmt: skip

# (name, partner kinds, role codes, days ago candidates, {role code or "": (subject, body)})
CAMPAIGNS = (
    (
        "AquaSoft Smart spring push",
        [],
        [],
        (75, 68, 61, 54, 47, 40),
        {
            "": (
                "Double points on AquaSoft Smart until the end of the month",
                "Hello {{ first_name }}, every AquaSoft Smart 700 softener {{ partner_name }} sells or installs "
                "this month earns double points.",
            ),
            "sales": (
                "Your customers ask for smart softeners: double points now",
                "Hello {{ first_name }}, show your customers the AquaSoft Smart app: every unit you sell this "
                "month earns double points.",
            ),
        },
    ),
    (
        "Winter service blitz",
        [PartnerKind.INSTALLER, PartnerKind.SERVICE_COMPANY, PartnerKind.DEALER, PartnerKind.DISTRIBUTOR],
        ["engineer", "foreman", "owner"],
        (33, 30, 27, 24, 21, 18),
        {
            "": (
                "Winter service blitz: 15 visits, 1,500 bonus points",
                "Hello {{ first_name }}, claim 15 service visits before the end of the month and earn a bonus.",
            ),
            "foreman": (
                "Your crew's service visits count double this winter",
                "Hello {{ first_name }}, every service visit your crew claims this month counts twice towards the "
                "winter bonus.",
            ),
        },
    ),
)
SEND_HOUR = 10  # in the program's time zone: outside the SMS quiet hours
OPENED, CLICKED, READ = 0.55, 0.2, 0.6  # shares of the messages opened (clicked of the opened), read in the inbox

SURVEY_TITLE = "How do you like the AquaPro Partner Club?"
SURVEY_POINTS = 200
SURVEY_DAYS_AGO = 12
RESPONDENTS = 30
PRODUCT_LINES = ["AquaSoft", "PureFlow", "ClearLine", "UVGuard", "AquaSense"]
WISHES = ["More rewards for teams", "Faster claim approval", "Training on site", "An app for the phone"]
COMMENTS = (
    "Claims are approved quickly, thank you.",
    "The rewards catalogue could have more tools.",
    "Please add more trainings in German.",
    "Great program, my team loves the points.",
    "",
)

# The past product survey, which loyalty's demo puts on its points history (loyalty.demo.surveys): sent, answered and
# closed there, each answer paid by the program's rules when it was given.
PAST_SURVEY_INTRO = "You sell, install and service the AquaSoft Smart 700: three minutes to tell us what to improve."
SMART_LIKES = ["The app", "Low salt use", "Quiet regeneration", "The compact size"]
SMART_WISHES = ["Easier installation", "A longer warranty", "A leak alarm in the app", "A smaller model"]
SMART_COMMENTS = (
    "Customers love the salt alerts on their phones.",
    "The bypass valve is hard to reach in tight cupboards.",
    "Pairing the app takes too long on site.",
    "",
    "",
)
INVITE_AT_MOST = 2_000  # a larger audience (a benchmark's --scale) is not invited: every message is sent while seeding

# (member e-mail or the n-th other member, topic, text, days ago, answer or "")
FEEDBACK = (
    (2, FeedbackTopic.REWARDS, "Could the catalogue have more workwear in small sizes?", 20,
     "Thank you! Three new jackets in sizes XS to S arrive in the catalogue next month."),
    ("foreman", FeedbackTopic.POINTS, "My crew's service visits from last week are not in my statement yet.", 9,
     "They were approved yesterday: the points are in your statement now."),
    (7, FeedbackTopic.WEBSITE, "The claim form is hard to use on my phone in the van.", 3, ""),
)  # fmt: skip


@dataclass
class CommunicationsReport:
    dry_run: bool
    present: bool
    rows: Counter = field(default_factory=Counter)
    seconds: float = 0.0


def present(program_id: int) -> bool:
    return Campaign.objects.filter(program_id=program_id, name=CAMPAIGNS[0][0]).exists()


def seed_communications(
    *, program_id: int | None, dry_run: bool = False, progress: Callable[[str], None] | None = None, now=None
) -> CommunicationsReport:
    """Add the demo's communications to the demo program (None in a dry run before the program exists)."""
    started = time.monotonic()
    report = CommunicationsReport(dry_run=dry_run, present=program_id is not None and present(program_id))
    if report.present:
        report.seconds = time.monotonic() - started
        return report
    if dry_run:
        report.rows.update(
            {"tips": len(TIPS), "campaigns": len(CAMPAIGNS), "surveys": 1, "survey responses": RESPONDENTS}
        )
        report.rows["feedback messages"] = len(FEEDBACK)
        return report
    say = progress or (lambda message: None)
    now = now or timezone.now()
    rng = random.Random(f"{partners_demo.SEED}:communications")
    with transaction.atomic():
        before = {label: model.objects.count() for label, model in TABLES}
        _tips()
        manager = User.objects.get(email=partners_demo.PROGRAM_MANAGERS[0][1])
        for spec in CAMPAIGNS:
            _campaign(program_id, spec, manager=manager, now=now, rng=rng)
        say("  communications: campaigns sent and measured")
        _survey(program_id, now=now, rng=rng)
        _feedback(manager, now=now)
        report.rows.update({label: model.objects.count() - before[label] for label, model in TABLES})
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _clock(at: datetime) -> Iterator[None]:
    """While open, `timezone.now()` is `at` (rows' auto timestamps included)."""
    with mock.patch.object(timezone, "now", lambda: at):
        yield


def _send_hour(now: datetime, days_ago: int) -> datetime:
    day = (now - timedelta(days=days_ago)).astimezone(ZoneInfo(settings.TIME_ZONE)).date()
    return datetime(day.year, day.month, day.day, SEND_HOUR, tzinfo=ZoneInfo(settings.TIME_ZONE))


def _send_queued(deliveries) -> list[Delivery]:
    """Send the queued e-mail and SMS among `deliveries` as their task would, now."""
    sent = []
    for pk in deliveries.filter(status=DeliveryStatus.QUEUED).exclude(channel=Channel.INBOX).values_list("pk"):
        sent.append(sending.delivery_send(delivery_id=pk[0]))
    return sent


def _tips() -> None:
    roles = {role.code: role for role in Role.objects.all()}
    for text, link, role, line, language in TIPS:
        tip = Tip(text=text, link_path=link, role=roles.get(role), product_line=line, language=language)
        tip.full_clean()
        tip.save()


def _campaign(program_id: int, spec, *, manager: User, now: datetime, rng: random.Random) -> None:
    name, kinds, role_codes, candidates, messages = spec
    roles = {role.code: role for role in Role.objects.filter(code__in=[*role_codes, *messages])}
    for days_ago in candidates:
        sent_at = _send_hour(now, days_ago)
        with transaction.atomic(), _clock(sent_at - timedelta(days=2)):
            campaign = Campaign(program_id=program_id, name=name, partner_kinds=kinds)
            campaigns.campaign_save(campaign=campaign)
            campaign.roles.set([roles[code] for code in role_codes])
            for code, (subject, body) in messages.items():
                message = CampaignMessage(campaign=campaign, role=roles.get(code), subject=subject, body=body)
                message.full_clean()
                message.save()
            with _clock(sent_at):
                campaign = campaigns.campaign_send(campaign=campaign, actor=manager)
            total = campaigns.campaign_reach(campaign).total
            if candidates[-1] == days_ago or (total.control_acted and total.effect and total.effect > 0):
                break
            transaction.set_rollback(True)  # the told group did not act more on this day: try the next one
    deliveries = Delivery.objects.filter(kind=Kind.CAMPAIGN, source_key=campaigns.source_key(campaign))
    with _clock(sent_at + timedelta(minutes=1)):
        sent = _send_queued(deliveries)
    for delivery in sent:
        if delivery.channel != Channel.EMAIL or delivery.status != DeliveryStatus.SENT:
            continue
        _report(delivery, EventType.DELIVERED, sent_at + timedelta(minutes=2))
        if rng.random() < OPENED:
            _report(delivery, EventType.OPENED, sent_at + timedelta(hours=rng.uniform(1, 48)))
            if rng.random() < CLICKED:
                _report(delivery, EventType.CLICKED, sent_at + timedelta(hours=rng.uniform(48, 60)))
    for delivery in deliveries.filter(channel=Channel.INBOX).select_related("member__user").order_by("pk"):
        if rng.random() < READ:
            with _clock(sent_at + timedelta(hours=rng.uniform(1, 72))):
                inbox.inbox_mark_read(viewer=delivery.member.user, delivery_id=delivery.pk)


def _report(delivery: Delivery, event: str, at: datetime) -> None:
    """What the e-mail provider's webhook would report for the message."""
    tracking.delivery_track(message_id=delivery.provider_id, event_type=event, at=at, esp_name="demo")


def _survey(program_id: int, *, now: datetime, rng: random.Random) -> None:
    opened = _send_hour(now, SURVEY_DAYS_AGO)
    with _clock(opened):
        survey = Survey(
            program_id=program_id,
            title=SURVEY_TITLE,
            intro="Four short questions, two minutes: tell us what works and what does not.",
            status=SurveyStatus.OPEN,
            opens_at=opened,
            points_for_answer=SURVEY_POINTS,
        )
        survey.full_clean()
        survey.save()
        questions = [
            Question(survey=survey, order=1, kind=QuestionKind.NPS, text="How likely are you to recommend the "
                     "AquaPro Partner Club to a colleague?"),
            Question(survey=survey, order=2, kind=QuestionKind.SINGLE, choices=PRODUCT_LINES,
                     text="Which product line do you sell or install most?"),
            Question(survey=survey, order=3, kind=QuestionKind.MULTIPLE, choices=WISHES, required=False,
                     text="What would make the program more useful to you?"),
            Question(survey=survey, order=4, kind=QuestionKind.TEXT, required=False,
                     text="Anything else you want to tell us?"),
        ]  # fmt: skip
        for question in questions:
            question.full_clean()
            question.save()
        surveys.survey_invite(survey=survey)
        _send_queued(Delivery.objects.filter(kind=Kind.SURVEY, source_key=f"survey:{survey.pk}"))
    # The demo logins have not answered yet: they find the survey open on their pages.
    demo_emails = [email for _, _, email, _ in partners_demo.DEMO_MEMBERS]
    audience = list(
        surveys.survey_audience(survey=survey).exclude(user__email__in=demo_emails).select_related("partner")
        .order_by("pk")
    )  # fmt: skip
    for hours, member in enumerate(sorted(rng.sample(audience, min(RESPONDENTS, len(audience))), key=_pk)):
        answers = {
            questions[0].pk: rng.choice((3, 5, 6, 7, 7, 8, 8, 9, 9, 9, 10, 10)),
            questions[1].pk: rng.choice(PRODUCT_LINES),
            questions[2].pk: rng.sample(WISHES, rng.randint(0, 2)),
            questions[3].pk: rng.choice(COMMENTS),
        }
        with _clock(opened + timedelta(hours=2 + hours * 7)):
            surveys.survey_answer(survey=survey, member=member, answers=answers)


def past_survey_open(*, program_id: int, title: str, points: int, closes_at: datetime) -> Survey:
    """Send a survey now (the caller's clock), open until `closes_at`: its questions, and its invitations, sent at
    once (not when the audience is larger than INVITE_AT_MOST). Then close it with `past_survey_close`."""
    now = timezone.now()
    survey = Survey(
        program_id=program_id,
        title=title,
        intro=PAST_SURVEY_INTRO,
        status=SurveyStatus.OPEN,
        opens_at=now,
        closes_at=closes_at,
        points_for_answer=points,
    )
    survey.full_clean()
    survey.save()
    questions = [
        Question(survey=survey, order=1, kind=QuestionKind.NPS,
                 text="How likely are you to recommend the AquaSoft Smart 700 to a customer?"),
        Question(survey=survey, order=2, kind=QuestionKind.SINGLE, choices=SMART_LIKES,
                 text="What do your customers like most about it?"),
        Question(survey=survey, order=3, kind=QuestionKind.MULTIPLE, choices=SMART_WISHES, required=False,
                 text="What should the next AquaSoft Smart do better?"),
        Question(survey=survey, order=4, kind=QuestionKind.TEXT, required=False,
                 text="Anything else about the AquaSoft Smart 700?"),
    ]  # fmt: skip
    for question in questions:
        question.full_clean()
    Question.objects.bulk_create(questions)
    if surveys.survey_audience(survey=survey).count() <= INVITE_AT_MOST:
        surveys.survey_invite(survey=survey)
        queued = Delivery.objects.filter(kind=Kind.SURVEY, source_key=f"survey:{survey.pk}")
        queued = queued.filter(status=DeliveryStatus.QUEUED).exclude(channel=Channel.INBOX)
        sending.deliveries_send(list(queued.values_list("pk", flat=True)))
    return survey


def past_survey_answer(*, survey: Survey, member: Member, rng: random.Random) -> Response:
    """The member's answers to the survey `past_survey_open` sent, now (the caller's clock), through survey_answer:
    the points for answering are paid by the program's rules (loyalty's survey-answered hook)."""
    nps, likes, wishes, comment = survey.questions.all()
    answers = {
        nps.pk: rng.choice((4, 6, 7, 8, 8, 9, 9, 9, 10, 10)),
        likes.pk: rng.choice(SMART_LIKES),
        wishes.pk: rng.sample(SMART_WISHES, rng.randint(0, 2)),
        comment.pk: rng.choice(SMART_COMMENTS),
    }
    return surveys.survey_answer(survey=survey, member=member, answers=answers)


def past_survey_close(*, survey: Survey) -> None:
    """Close the survey now (the caller's clock), as the program team does once its closing time has passed."""
    survey.status = SurveyStatus.CLOSED
    survey.save(update_fields=["status", "updated_at"])


def _pk(member: Member) -> int:
    return member.pk


def _feedback(manager: User, *, now: datetime) -> None:
    others = list(
        Member.objects.filter(status=MemberStatus.ACTIVE)
        .exclude(user__email__in=[email for _, _, email, _ in partners_demo.DEMO_MEMBERS])
        .select_related("user")
        .order_by("pk")
    )
    demo = {role: email for _, _, email, role in partners_demo.DEMO_MEMBERS}
    for who, topic, text, days_ago, answer in FEEDBACK:
        if isinstance(who, int):
            member = others[who % len(others)]
        else:
            member = Member.objects.get(user__email=demo[who], status=MemberStatus.ACTIVE)
        written = _send_hour(now, days_ago)
        with _clock(written):
            message = feedback.feedback_send(member=member, topic=topic, text=text)
        if answer:
            with _clock(written + timedelta(hours=5)):
                feedback.feedback_answer(feedback=message, answer=answer, actor=manager)
                _send_queued(Delivery.objects.filter(source_key=f"feedback:{message.pk}:answered"))
