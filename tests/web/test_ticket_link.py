"""The ticket link in emails sends each role to its own page of the ticket."""
import pytest

pytestmark = pytest.mark.django_db


def test_anonymous_is_sent_to_sign_in_first(client):
    response = client.get("/t/7/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/t/7/"


@pytest.mark.parametrize(
    "persona, target",
    [("requester", "/portal/tickets/7/"), ("agent_user", "/work/tickets/7/"),
     ("supervisor", "/work/tickets/7/")],
)
def test_each_role_lands_on_its_page(client, request, persona, target):
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/t/7/")
    assert response.status_code == 302
    assert response["Location"] == target
