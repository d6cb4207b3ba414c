"""The admin action "Set up as a field program": what `manage.py setup_program` does, on an empty program chosen in
the programs' list. The program admin is loyalty's; this app adds the action to it, as the program core may not import
the catalogue of rewards that a blueprint builds (the import contracts in pyproject.toml)."""

from django import forms
from django.contrib import admin, messages

from blueprints.building import program_build, program_is_empty
from blueprints.loading import blueprint_choices
from loyalty.common.admin import answers, ask
from loyalty.common.errors import ApplicationError
from loyalty.models import Program


class BlueprintForm(forms.Form):
    blueprint = forms.ChoiceField(label="Field program", choices=())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["blueprint"].choices = blueprint_choices()


@admin.action(description="Set up as a field program (empty programs only)", permissions=["change"])
def set_up_field_program(model_admin, request, queryset):
    programs = list(queryset.order_by("pk"))
    if len(programs) != 1:
        model_admin.message_user(request, "Choose one program to set up.", level=messages.ERROR)
        return None
    program = programs[0]
    if not program_is_empty(program):
        model_admin.message_user(
            request,
            f"{program.name} already has tiers, rules or rewards: a field program is set up on an empty one.",
            level=messages.ERROR,
        )
        return None

    def apply(data) -> None:
        try:
            built = program_build(name=data["blueprint"], actor=request.user, program=program)
        except ApplicationError as exc:
            model_admin.message_user(request, exc.message, level=messages.ERROR)
            return
        model_admin.log_change(request, built, f"Set up as the field program {data['blueprint']}.")
        model_admin.message_user(
            request,
            f"{built.name} is set up: {built.tiers.count()} tiers, {built.rules.count()} rules, "
            f"{built.rewards.count()} rewards, {built.courses.count()} courses, {built.challenges.count()} challenges.",
            level=messages.SUCCESS,
        )

    return ask(
        model_admin,
        request,
        programs,
        form=BlueprintForm(answers(request)),
        apply=apply,
        title="Set up as a field program",
        intro="Builds the chosen field program's tiers, rules, rewards, courses and challenges into this empty "
        "program, and applies its settings. The rules are published in your name.",
        button="Set up",
        describe=str,
        fields=["blueprint"],
    )


program_admin = admin.site.get_model_admin(Program)
program_admin.actions = [*(program_admin.actions or []), set_up_field_program]
