"""Reads of programs: which program the member site shows."""

from loyalty.models import Program


def current_program(request) -> Program | None:
    """The program the member site shows: the one chosen in this session, else the oldest active one."""
    if not hasattr(request, "_current_program"):
        programs = list(Program.objects.filter(is_active=True).order_by("pk"))
        chosen = request.session.get("program_id") if hasattr(request, "session") else None
        request._current_program = next((p for p in programs if p.pk == chosen), programs[0] if programs else None)
        request._active_programs = programs
    return request._current_program
