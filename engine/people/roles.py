"""Roles: the BPMN lanes of docs/procedures.md and the role codes of docs/api.md."""

from __future__ import annotations

REQUESTER = "requester"
DEPARTMENT_HEAD = "department_head"
COMMUNICATIONS_MANAGER = "communications_manager"
ADMINISTRATIVE_LIEUTENANT = "administrative_lieutenant"
SOCIAL_MEDIA_MANAGER = "social_media_manager"
CITY_ATTORNEY = "city_attorney"
RECORDS_OFFICER = "records_officer"
ADMIN = "admin"
# Who filed through the public pages: no login, no lane, only the history names them so.
PUBLIC = "public"
# Hears of an overdue Communications Manager task (settings: communications_escalation_role).
CITY_ADMINISTRATOR = "city_administrator"

# Lane names exactly as in docs/procedures.md -> role codes of docs/api.md.
LANE_ROLES = {
    "Requester": REQUESTER,
    "Department Head": DEPARTMENT_HEAD,
    "Communications Manager": COMMUNICATIONS_MANAGER,
    "Administrative Lieutenant": ADMINISTRATIVE_LIEUTENANT,
    "Social Media Manager": SOCIAL_MEDIA_MANAGER,
    "City Attorney": CITY_ATTORNEY,
    "Records Officer": RECORDS_OFFICER,
}

# Roles granted directly; department_head is held by being the head of a department,
# and every user may act as a requester.
GRANTABLE_ROLES = (
    COMMUNICATIONS_MANAGER,
    ADMINISTRATIVE_LIEUTENANT,
    SOCIAL_MEDIA_MANAGER,
    CITY_ATTORNEY,
    RECORDS_OFFICER,
    ADMIN,
    CITY_ADMINISTRATOR,
)

POLICE_DEPARTMENT = "police"

# Role codes as the policy names them, for pages, mail and records.
ROLE_NAMES = {role: lane for lane, role in LANE_ROLES.items()} | {
    ADMIN: "Administrator",
    CITY_ADMINISTRATOR: "City Administrator",
    PUBLIC: "Member of the public",
}


def role_name(role: str | None) -> str:
    """A role code as the policy names it: communications_manager -> Communications Manager."""
    return ROLE_NAMES.get(role or "", (role or "").replace("_", " ").title())
