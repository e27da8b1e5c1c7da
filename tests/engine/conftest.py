"""The City of the procedures' engine tests: people in every lane and registry accounts with their managers."""

from __future__ import annotations

import pytest

from tests.procedures import actor, add_account


@pytest.fixture
def city(session, people, make_user):
    """people (see tests/conftest.py) plus a moderator, an attorney, a records officer and three accounts.

    facebook: the City's Facebook (communications), managed by moderator;
    police_x: the Police Department's X account, managed by officer;
    profile: an investigative profile of the Police Department, managed by officer.
    """
    make_user("moderator", department="communications", roles=["social_media_manager"])
    make_user("other_moderator", department="communications", roles=["social_media_manager"])
    make_user("attorney", department="administration", roles=["city_attorney"])
    make_user("records", department="administration", roles=["records_officer"])
    make_user("newbie", department="parks")
    facebook = add_account(
        session,
        "City of West St. Paul",
        "https://facebook.com/cityofwsp",
        "communications",
        ["moderator", "other_moderator"],
    )
    police_x = add_account(session, "West St. Paul Police", "https://x.com/wsppd", "police", ["officer"], platform="x")
    profile = add_account(
        session, "Neighborhood watcher", None, "police", ["officer"], platform="other", investigative=True
    )

    class City:
        pass

    for name in (
        "requester",
        "parks_head",
        "comms",
        "lieutenant",
        "officer",
        "police_chief",
        "finance_head",
        "colleague",
        "admin",
        "moderator",
        "other_moderator",
        "attorney",
        "records",
        "newbie",
    ):
        setattr(City, name, actor(session, name))
    City.facebook, City.police_x, City.profile = facebook.id, police_x.id, profile.id
    return City
