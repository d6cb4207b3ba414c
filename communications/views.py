"""The member site's messages: the inbox (with the bell's count, communications.context_processors), the message
preferences and the one-click unsubscribe link of a marketing e-mail (no sign-in, RFC 8058).

Thin views over communications.selectors (reads, scoped by partners.visibility), communications.inbox and
communications.preferences (writes)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from communications import inbox, preferences, selectors
from communications.constants import Topic
from communications.delivery_links import local_path
from communications.forms import PreferencesForm
from communications.models import Delivery
from loyalty.common.errors import ApplicationError
from loyalty.common.htmx import render_page_or_partial, wants_partial
from partners.visibility import viewer_for

PAGE_SIZE = 20
# What an unusable unsubscribe link answers: gone for good (410) or never valid (404); a transactional topic
# cannot be unsubscribed from (409).
UNSUBSCRIBE_ERROR_STATUS = {
    preferences.PreferenceError.LINK_EXPIRED: 410,
    preferences.PreferenceError.LINK_INVALID: 404,
    preferences.PreferenceError.NOT_SWITCHABLE: 409,
}


def _page_number(request) -> int:
    """The inbox page a form was posted from (1 if it says nothing sensible)."""
    value = request.POST.get("page", "")
    return int(value) if value.isdigit() and 0 < len(value) < 7 else 1


def _inbox_url(page: int) -> str:
    return reverse("inbox") + (f"?page={page}" if page > 1 else "")


def _inbox_context(request, page_number) -> dict:
    viewer = viewer_for(request.user)
    page = Paginator(selectors.inbox_list(viewer=viewer), PAGE_SIZE).get_page(page_number)
    return {"page": page, "is_member": viewer.member is not None}


@login_required
def inbox_page(request):
    context = _inbox_context(request, request.GET.get("page"))
    return render_page_or_partial(request, "communications/inbox.html", "inbox-list", context)


def _mark_read(request, delivery_id: int) -> Delivery:
    try:
        return inbox.inbox_mark_read(viewer=viewer_for(request.user), delivery_id=delivery_id)
    except Delivery.DoesNotExist:
        raise Http404("No such message.") from None


@login_required
@require_POST
def message_read(request, delivery_id: int):
    message = _mark_read(request, delivery_id)
    if wants_partial(request):
        # The message, now read, and the bell with its new count (swapped out of band).
        return render(request, "communications/_message_read.html", {"inbox_message": message})
    return redirect(_inbox_url(_page_number(request)))


@login_required
@require_POST
def inbox_read_all(request):
    marked = inbox.inbox_mark_all_read(viewer=viewer_for(request.user))
    page = _page_number(request)
    if wants_partial(request):
        context = {**_inbox_context(request, page), "refresh_bell": True}
        return render(request, "communications/inbox.html#inbox-list", context)
    if marked:
        messages.success(request, _("All your messages are marked as read."))
    return redirect(_inbox_url(page))


@login_required
def message_open(request, delivery_id: int):
    """Open what a message is about: the message counts as read, and the member lands on its page (on this site:
    the link's path, whatever host the message was written for), or back in the inbox if it links nowhere."""
    message = _mark_read(request, delivery_id)
    if not message.link:
        return redirect(reverse("inbox") + f"#message-{message.pk}")
    return redirect(local_path(message.link))


@login_required
@require_http_methods(["GET", "POST"])
def preferences_page(request):
    member = viewer_for(request.user).member
    if member is None:
        # Staff and people without a partner get no messages from the program: nothing to choose.
        return render(request, "communications/preferences.html", {"form": None})
    choices = selectors.preference_choices(member=member)
    form = PreferencesForm(request.POST or None, choices=choices)
    if request.method == "POST" and form.is_valid():
        try:
            preferences.preferences_save(member=member, channels=form.channels(), opted_in=form.opted_in())
        except ApplicationError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(request, _("Your message preferences have been saved."))
            return redirect("message_preferences")
    return render(request, "communications/preferences.html", {"form": form, "member": member})


# One-click unsubscribe: the link in a marketing e-mail's List-Unsubscribe header and footer. The signed token is
# the only credential (no sign-in), and a mail provider posts "List-Unsubscribe=One-Click" with no CSRF token.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str):
    try:
        member, topic = preferences.unsubscribe_read(token)
    except ApplicationError as exc:
        context = {"problem": exc.message}
        return render(request, "communications/unsubscribe.html", context, status=UNSUBSCRIBE_ERROR_STATUS[exc.code])
    if request.method == "POST":
        preferences.preference_unsubscribe(member=member, topic=topic)
    context = {"topic": Topic(topic).label, "done": request.method == "POST"}
    return render(request, "communications/unsubscribe.html", context)
