from partners.visibility import Viewer, current_membership, viewer_kind


def viewer(request):
    """What the navigation needs to know about the person looking at the page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"viewer_kind": Viewer.ANONYMOUS, "viewer_member": None}
    return {"viewer_kind": viewer_kind(user), "viewer_member": current_membership(user), "Viewer": Viewer}
