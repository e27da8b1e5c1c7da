"""Administration: users (add, change roles and department, deactivate), departments (add, set the head),
undelivered letters, and the public notice."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from engine.errors import Invalid
from engine.people import directory, recovery
from engine.people.roles import GRANTABLE_ROLES
from engine.requests import public
from forms.admin import DepartmentForm, DepartmentHeadForm, EditUserForm, NewUserForm, NoticeForm
from forms.auth import ResetPasswordForm
from web import login_limits
from web.auth import current_actor
from web.db import get_session, transactional
from web.pages import admin_only, show_errors, show_refusal
from web.present import role_name

admin = Blueprint("admin", __name__, url_prefix="/admin")
admin_only(admin, directory.MANAGE_PEOPLE)
CHANGE_NAMES = {
    "display_name": "full name",
    "email": "e-mail",
    "department": "department",
    "roles": "roles",
    "head_of": "departments headed",
}


def _department_choices() -> list[tuple[str, str]]:
    return [(d.code, d.name) for d in directory.list_departments(get_session(), current_actor())]


def _role_choices() -> list[tuple[str, str]]:
    return [(role, role_name(role)) for role in GRANTABLE_ROLES]


def _people_choices() -> list[tuple[str, str]]:
    """Active users, who alone can head a department."""
    return [
        (u.username, f"{u.display_name} ({u.username})")
        for u in directory.list_users(get_session(), current_actor())
        if u.active
    ]


def _users_page(form: NewUserForm, general_errors=(), status: int = 200):
    """The list of users with the form to add one."""
    rows = directory.list_users(get_session(), current_actor())
    return render_template(
        "admin/users.html",
        rows=rows,
        form=form,
        general_errors=list(general_errors),
        department_names=dict(_department_choices()),
    ), status


@admin.get("/users")
def users():
    """Every user with their department, roles and headships, and the form to add one."""
    return _users_page(NewUserForm(departments=_department_choices(), roles=_role_choices()))


@admin.post("/users")
@transactional
def add_user():
    """Add a user; they can log in at once with the password given."""
    session = get_session()
    form = NewUserForm(request.form, departments=_department_choices(), roles=_role_choices())
    general: list[str] = []
    if form.validate():
        try:
            user = directory.add_user(
                session,
                current_actor(),
                username=form.username.data.strip(),
                password=form.password.data,
                display_name=form.display_name.data,
                email=form.email.data,
                department=form.department.data,
                roles=form.roles.data,
                head_of=form.head_of.data,
            )
        except Invalid as exc:
            general = show_refusal(form, exc)
        else:
            flash(f"Added {user.display_name} ({user.username}); they can log in now.", "success")
            return redirect(url_for("admin.users"))
    return _users_page(form, general, 400)


def _edit_form(person: directory.UserSummary, formdata=None) -> EditUserForm:
    """The edit form, filled in from the user as they are (or from what was posted)."""
    data = {
        "display_name": person.display_name,
        "email": person.email or "",
        "department": person.department_code or "",
        "roles": list(person.roles),
        "head_of": list(person.head_of),
        "active": person.active,
    }
    return EditUserForm(
        formdata, data=None if formdata else data, departments=_department_choices(), roles=_role_choices()
    )


def _user_page(
    person: directory.UserSummary,
    form: EditUserForm,
    general_errors=(),
    status: int = 200,
    password_form: ResetPasswordForm | None = None,
):
    """One user's page: who they are, the form to change them, a new password and clearing their sign-in limits."""
    return render_template(
        "admin/user.html",
        person=person,
        form=form,
        password_form=password_form or ResetPasswordForm(),
        general_errors=list(general_errors),
        is_self=person.id == current_actor().id,
        department_names=dict(_department_choices()),
    ), status


@admin.get("/users/<id:user_id>")
def user(user_id):
    """One user, with the form to change them and the button to deactivate or reactivate them."""
    person = directory.get_user(get_session(), current_actor(), user_id)
    return _user_page(person, _edit_form(person))


@admin.post("/users/<id:user_id>/password")
@transactional
def reset_password(user_id):
    """Give a person a new password to hand over in person; their sessions and API tokens end."""
    session = get_session()
    person = directory.get_user(session, current_actor(), user_id)
    password_form = ResetPasswordForm(request.form)
    if password_form.validate():
        try:
            recovery.reset_by_admin(session, current_actor(), user_id, password_form.password.data)
        except Invalid as exc:
            show_refusal(password_form, exc)
        else:
            flash(
                f"{person.display_name} has a new password: give it to them in person. Their sessions and API "
                "tokens have ended.",
                "success",
            )
            return redirect(url_for("admin.user", user_id=user_id))
    return _user_page(person, _edit_form(person), status=400, password_form=password_form)


@admin.post("/users/<id:user_id>/sign-in-limits")
@transactional
def clear_sign_in_limits(user_id):
    """Forget the sign-in attempts counted against a person's account, so they may log in at once."""
    session = get_session()
    person = recovery.unlock(
        session, current_actor(), user_id, lambda username: login_limits.forget_account(session, username)
    )
    flash(f"{person.display_name} may try to log in again at once: their sign-in limits are cleared.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


def _change_message(change: directory.Change) -> str:
    """What an update did, in a sentence or two."""
    fields = change.fields
    parts = []
    if "active" in fields:
        if fields["active"][1]:
            parts.append(f"{change.name} was reactivated and can log in again.")
        else:
            tokens = (
                f" and {change.tokens_revoked} API token{'' if change.tokens_revoked == 1 else 's'} revoked"
                if change.tokens_revoked
                else ""
            )
            parts.append(f"{change.name} was deactivated: logged out everywhere{tokens}; they can no longer log in.")
    named = [label for field, label in CHANGE_NAMES.items() if field in fields]
    if named:
        parts.append(f"Changed {change.name}'s {', '.join(named)}.")
    return " ".join(parts) or f"Nothing changed for {change.name}."


@admin.post("/users/<id:user_id>")
@transactional
def update_user(user_id):
    """Save the edit form, or deactivate / reactivate with the one-button form (set_active=0 or 1)."""
    session = get_session()
    person = directory.get_user(session, current_actor(), user_id)
    quick = request.form.get("set_active")
    form = _edit_form(person, None if quick is not None else request.form)
    if quick is None and not form.validate():
        return _user_page(person, form, status=400)
    try:
        if quick is not None:
            change = directory.update_user(session, current_actor(), user_id, active=quick == "1")
        else:
            change = directory.update_user(
                session,
                current_actor(),
                user_id,
                display_name=form.display_name.data,
                email=form.email.data,
                department=form.department.data,
                roles=form.roles.data,
                head_of=form.head_of.data,
                active=form.active.data,
            )
    except Invalid as exc:
        general = show_refusal(form, exc)
        return _user_page(directory.get_user(session, current_actor(), user_id), form, general, 400)
    flash(_change_message(change), "success")
    return redirect(url_for("admin.user", user_id=user_id))


def _head_form(department, people, formdata=None) -> DepartmentHeadForm:
    """The one-field form that sets a department's head (its own prefix, so every row's field is its own)."""
    return DepartmentHeadForm(
        formdata,
        data=None if formdata else {"head": department.head.username if department.head else ""},
        people=people,
        prefix=f"department-{department.id}",
        label=f"Head of {department.name}",
    )


def _departments_page(
    form: DepartmentForm, failed_head: tuple[int, Invalid] | None = None, general_errors=(), status: int = 200
):
    """The departments with their heads, a form per row to change the head, and the form to add one."""
    session = get_session()
    departments = directory.list_departments(session, current_actor())
    people = _people_choices()
    head_forms, head_errors = {}, {}
    for department in departments:
        if failed_head and failed_head[0] == department.id:
            head_forms[department.id] = _head_form(department, people, request.form)
            head_errors[department.id] = show_errors(head_forms[department.id], failed_head[1])
        else:
            head_forms[department.id] = _head_form(department, people)
    return render_template(
        "admin/departments.html",
        departments=departments,
        head_forms=head_forms,
        head_errors=head_errors,
        form=form,
        general_errors=list(general_errors),
    ), status


@admin.get("/departments")
def departments():
    """Every department with its head, and the form to add one."""
    return _departments_page(DepartmentForm(people=_people_choices()))


@admin.post("/departments")
@transactional
def add_department():
    """Add a department; requests and accounts can name it at once."""
    session = get_session()
    form = DepartmentForm(request.form, people=_people_choices())
    general: list[str] = []
    if form.validate():
        try:
            department = directory.create_department(
                session, current_actor(), code=form.code.data, name=form.name.data, head=form.head.data
            )
        except Invalid as exc:
            general = show_refusal(form, exc)
        else:
            head = f", headed by {department.head.display_name}" if department.head else ""
            flash(f"Added the department {department.name} ({department.code}){head}.", "success")
            return redirect(url_for("admin.departments"))
    return _departments_page(form, general_errors=general, status=400)


@admin.post("/departments/<id:department_id>")
@transactional
def set_head(department_id):
    """Set or clear a department's head."""
    session = get_session()
    head = request.form.get(f"department-{department_id}-head")
    try:
        change = directory.set_department_head(session, current_actor(), department_id, head)
    except Invalid as exc:
        session.rollback()
        return _departments_page(DepartmentForm(people=_people_choices()), (department_id, exc), status=400)
    if not change.fields:
        flash(f"Nothing changed: the head of {change.name} stays as it was.", "info")
    elif change.fields["head"][1]:
        names = dict(_people_choices())
        flash(
            f"{names.get(change.fields['head'][1], change.fields['head'][1])} is now the head of {change.name}.",
            "success",
        )
    else:
        flash(f"{change.name} has no head now; its department head tasks wait until one is set.", "success")
    return redirect(url_for("admin.departments"))


@admin.get("/mail")
def mail():
    """Letters the mail server refused or has not taken yet, with a way to send one again."""
    rows = directory.undelivered_mail(get_session(), current_actor())
    return render_template("admin/mail.html", rows=rows)


@admin.post("/mail/<id:mail_id>/send-again")
@transactional
def send_mail_again(mail_id):
    """Put a letter back in the outbox for the next pass of the sender."""
    try:
        letter = directory.send_again(get_session(), current_actor(), mail_id)
    except Invalid as exc:
        get_session().rollback()
        flash(exc.message, "error")
    else:
        flash(f"“{letter.subject}” will be sent again at the next pass of the sender.", "success")
    return redirect(url_for("admin.mail"))


def _notice_page(form: NoticeForm, status: int = 200):
    session = get_session()
    return render_template(
        "admin/notice.html",
        form=form,
        current=public.notice_in_force(session),
        versions=public.notice_versions(session),
    ), status


@admin.get("/public-notice")
def notice():
    """The public notice the City's accounts link to, to edit; its earlier versions, with who saved them."""
    return _notice_page(NoticeForm(data={"body": public.notice_in_force(get_session()).body}))


@admin.post("/public-notice")
@transactional
def save_notice():
    """Save a new version of the public notice; it is shown on the public pages at once."""
    session = get_session()
    form = NoticeForm(request.form)
    if form.validate():
        try:
            public.change_notice(session, current_actor(), form.body.data)
        except Invalid as exc:
            show_refusal(form, exc)
        else:
            flash("The public notice is changed; the public pages show the new text now.", "success")
            return redirect(url_for("admin.notice"))
    return _notice_page(form, status=400)
