"""Member-site pages of the program core: the points statement and the sale lines behind an entry."""

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from loyalty.common.htmx import render_page_or_partial
from loyalty.models import PointsAccount, PointsEntry
from loyalty.selectors.ledger import (
    account_postings,
    accounts_for,
    entry_lines,
    expiring_soon,
    statement,
)
from loyalty.selectors.programs import current_program
from partners.visibility import viewer_for

PAGE_SIZE = 25


@login_required
@require_GET
def points_statement(request):
    """Every entry of one account, newest first, each explaining itself. A member sees their own account;
    a partner owner also the company account and their people's; staff any account they may see."""
    program = current_program(request)
    if program is None:
        return render(request, "loyalty/statement.html", {"program": None})
    viewer = viewer_for(request.user)
    member = viewer.member
    visible = accounts_for(viewer).filter(program=program).select_related("member__user", "partner", "program")
    account_id = request.GET.get("account", "")
    if account_id:
        account = visible.filter(pk=account_id).first() if account_id.isdigit() else None
        if account is None:
            raise Http404("No such account.")
    elif member is not None:
        # No account yet simply means no points yet: show an empty statement, create nothing.
        account = visible.filter(member=member).first() or PointsAccount(program=program, member=member)
    else:
        raise Http404("Open a statement from a partner's page.")

    company = None
    if viewer.is_owner and account.member_id == member.pk:
        company = visible.filter(partner=member.partner_id).first()
    page = Paginator(statement(account=account) if account.pk else [], PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "account": account,
        "company_account": company,
        "expiring": expiring_soon(account=account) if account.pk else None,
        "page": page,
        "is_own": account.member_id is not None and member is not None and account.member_id == member.pk,
    }
    return render_page_or_partial(request, "loyalty/statement.html", "entries", context)


@login_required
@require_GET
def points_entry(request, entry_id):
    """One statement entry and the sale lines behind it, each with what it paid this account and why.
    Only entries of the accounts the statement would show this viewer (404 otherwise)."""
    program = current_program(request)
    if program is None:
        raise Http404("No program is running.")
    viewer = viewer_for(request.user)
    visible = accounts_for(viewer).filter(program=program)
    entry = get_object_or_404(
        PointsEntry.objects.filter(account__in=visible).select_related(
            "account__member__user", "account__partner", "account__program", "reverses"
        ),
        pk=entry_id,
    )
    account = entry.account
    member = viewer.member
    page = Paginator(entry_lines(entry=entry), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for line in page:
        postings = account_postings(line=line, account=account)
        rows.append({"line": line, "postings": postings, "points": sum(p.points for p in postings)})
    context = {
        "entry": entry,
        "account": account,
        "program": account.program,
        "page": page,
        "rows": rows,
        "is_own": account.member_id is not None and member is not None and account.member_id == member.pk,
    }
    return render_page_or_partial(request, "loyalty/entry.html", "lines", context)
