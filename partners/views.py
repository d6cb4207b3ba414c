def home(request):
    raise NotImplementedError


def profile(request, **kwargs):
    raise NotImplementedError


def team(request, **kwargs):
    raise NotImplementedError


def team_invite(request, **kwargs):
    raise NotImplementedError


def member_approve(request, **kwargs):
    raise NotImplementedError


def member_deactivate(request, **kwargs):
    raise NotImplementedError


def invitation_resend(request, **kwargs):
    raise NotImplementedError


def invitation_cancel(request, **kwargs):
    raise NotImplementedError


def invitation_accept(request, **kwargs):
    raise NotImplementedError


def partner_list(request, **kwargs):
    raise NotImplementedError


def partner_detail(request, **kwargs):
    raise NotImplementedError
