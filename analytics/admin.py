"""The back office's index becomes the program managers' dashboard (analytics.admin_dashboard): the admin site's
index view is wrapped to add the dashboard's context, and its template (analytics/admin_index.html) extends the
project's admin index (the partners overview and the app list, kept below the dashboard). Anyone else the admin
lets in (staff without the program-manager role) gets the plain index."""

from functools import wraps

from django.contrib import admin

from analytics import admin_dashboard
from loyalty.common.admin import is_program_manager

admin.site.index_template = "analytics/admin_index.html"


def with_dashboard(index):
    @wraps(index)
    def dashboard_index(request, extra_context=None):
        context = dict(extra_context or {})
        if is_program_manager(request.user):
            context["dashboard"] = admin_dashboard.build(request.GET, user=request.user)
        return index(request, extra_context=context)

    return dashboard_index


admin.site.index = with_dashboard(admin.site.index)
