"""POST /api/files/{org_id}/{id}/share, GET /api/s/{token} and /api/share-links."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEvent
from sharing.models import ShareLink
from sharing.services import share_download_record
from tests.conftest import assert_error, data_of, make_persona
from tests.factories import OrganizationFactory
from uploads.models import FileStatus, ReviewState, StoredFile
from uploads.signals import file_content_changed, file_withdrawn

pytestmark = pytest.mark.django_db
BODY = os.urandom(5000)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def blob(owner, make_file):
    return make_file(owner.org, BODY, name="shared.bin")


@pytest.fixture
def stranger(db):
    """Signed in, in a third organization, never named by any link."""
    return make_persona(OrganizationFactory(name="Org C"), "owner")


def share(persona, f, status: int = 201, **body) -> dict:
    return data_of(persona.client().post(f"/api/files/{f.organization_id}/{f.pk}/share", body, format="json"), status)


def path_of(result: dict) -> str:
    assert result["url"].startswith("http://testserver/api/s/fcs_")
    return result["url"].removeprefix("http://testserver")


def test_public_share_link_needs_no_auth(owner, blob, anon):
    result = share(owner, blob, visibility="public")
    assert result["visibility"] == "public"
    assert result["link"]["visibility"] == "public"
    assert result["link"]["id"].startswith("shr_")
    assert result["token"] and result["url"].endswith(result["token"])
    blob.refresh_from_db()
    assert blob.visibility == "public"
    response = anon.get(path_of(result))
    assert response.status_code == 200
    assert body_of(response) == BODY
    assert response["Content-Disposition"] == 'attachment; filename="shared.bin"'
    ranged = anon.get(path_of(result), HTTP_RANGE="bytes=100-199")
    assert ranged.status_code == 206 and body_of(ranged) == BODY[100:200]


def test_the_token_is_stored_hashed(owner, blob):
    result = share(owner, blob, visibility="public")
    link = ShareLink.objects.get(pk=result["link"]["id"])
    assert result["token"] not in (link.secret_hash, link.prefix)
    assert len(link.secret_hash) == 64 and result["token"].split("_")[1] == link.prefix


# --- the visibility matrix -------------------------------------------------------------------

CALLERS = ("anonymous", "member", "outsider_named", "stranger", "viewer")
EXPECTED = {
    "public": {"anonymous": 200, "member": 200, "outsider_named": 200, "stranger": 200, "viewer": 200},
    "org": {"anonymous": 404, "member": 200, "outsider_named": 404, "stranger": 404, "viewer": 200},
    "restricted": {"anonymous": 404, "member": 404, "outsider_named": 200, "stranger": 404, "viewer": 404},
}


@pytest.mark.parametrize("visibility", sorted(EXPECTED))
def test_visibility_matrix(visibility, owner, member, viewer, outsider, stranger, blob, anon):
    named = {"users": [outsider.user.pk]} if visibility == "restricted" else {}
    result = share(owner, blob, visibility=visibility, **named)
    clients = {
        "anonymous": anon,
        "member": member.client(),
        "outsider_named": outsider.client(),
        "stranger": stranger.client(),
        "viewer": viewer.client(),
    }
    for caller in CALLERS:
        response = clients[caller].get(path_of(result))
        expected = EXPECTED[visibility][caller]
        if expected == 200:
            assert response.status_code == 200, (visibility, caller)
            assert body_of(response) == BODY
        else:
            assert_error(response, 404, "NOT_FOUND")


def test_restricted_by_email_matches_case_insensitively(owner, outsider, stranger, blob):
    result = share(owner, blob, visibility="restricted", emails=[outsider.user.email.upper()])
    assert result["link"]["emails"] == [outsider.user.email.lower()]
    assert outsider.client().get(path_of(result)).status_code == 200
    assert_error(stranger.client().get(path_of(result)), 404)


def test_a_bad_credential_on_a_share_link_is_a_401(owner, blob, anon):
    result = share(owner, blob, visibility="public")
    anon.credentials(HTTP_X_API_KEY="fck_000000000000_nope")
    assert_error(anon.get(path_of(result)), 401)


def test_private_returns_no_link_and_ends_every_link_at_once(owner, outsider, blob, anon):
    public = share(owner, blob, visibility="public")
    assert anon.get(path_of(public)).status_code == 200
    # Narrowing to restricted ends the public link too (it is wider than the file now).
    restricted = share(owner, blob, visibility="restricted", users=[outsider.user.pk])
    assert restricted["revoked_links"] == 1
    assert_error(anon.get(path_of(public)), 404)
    assert outsider.client().get(path_of(restricted)).status_code == 200
    private = share(owner, blob, status=200, visibility="private")
    assert private == {
        "file_id": blob.pk,
        "visibility": "private",
        "url": None,
        "token": None,
        "link": None,
        "revoked_links": 1,
    }
    assert_error(outsider.client().get(path_of(restricted)), 404)
    assert set(ShareLink.objects.filter(file=blob).values_list("revoked_reason", flat=True)) == {"narrowed", "private"}


def test_patching_the_file_private_revokes_its_links(owner, blob, anon, django_capture_on_commit_callbacks):
    result = share(owner, blob, visibility="public")
    with django_capture_on_commit_callbacks(execute=True):
        data_of(owner.client().patch(f"/api/files/{owner.org.pk}/{blob.pk}", {"visibility": "private"}, format="json"))
    link = ShareLink.objects.get(pk=result["link"]["id"])
    assert link.revoked_at is not None and link.revoked_reason == "private"
    assert_error(anon.get(path_of(result)), 404)


def test_access_checks_the_files_visibility_even_without_the_hooks(owner, member, blob, anon):
    public = share(owner, blob, visibility="public")
    StoredFile.objects.filter(pk=blob.pk).update(visibility="org")  # no signal, no revocation
    assert_error(anon.get(path_of(public)), 404)
    org = share(owner, blob, visibility="org")
    StoredFile.objects.filter(pk=blob.pk).update(visibility="private")
    assert_error(member.client().get(path_of(org)), 404)
    assert ShareLink.objects.filter(file=blob, revoked_at__isnull=True).count() == 1  # the org link, unrevoked


def test_staged_files_cannot_be_shared_publicly(owner, member, make_file, anon):
    staged = make_file(owner.org, BODY, status=FileStatus.STAGED, review_state=ReviewState.PENDING)
    assert_error(
        owner.client().post(f"/api/files/{owner.org.pk}/{staged.pk}/share", {"visibility": "public"}, format="json"),
        409,
        "NOT_SHAREABLE",
    )
    staged.refresh_from_db()
    assert staged.visibility == "private"
    assert not ShareLink.objects.filter(file=staged).exists()
    org = share(owner, staged, visibility="org")
    assert member.client().get(path_of(org)).status_code == 200
    # A public link that somehow exists for a file no longer active serves nothing.
    ShareLink.objects.filter(file=staged).update(visibility="public")
    StoredFile.objects.filter(pk=staged.pk).update(visibility="public")
    assert_error(anon.get(path_of(org)), 404)


def test_rejected_files_cannot_be_shared_at_all(owner, make_file):
    rejected = make_file(owner.org, BODY, status=FileStatus.STAGED, review_state=ReviewState.REJECTED)
    for visibility in ("public", "org"):
        assert_error(
            owner.client().post(f"/api/files/{owner.org.pk}/{rejected.pk}/share", {"visibility": visibility}, format="json"),
            409,
            "NOT_SHAREABLE",
        )


def test_a_file_rejected_later_loses_its_links(owner, member, blob, django_capture_on_commit_callbacks):
    result = share(owner, blob, visibility="org")
    StoredFile.objects.filter(pk=blob.pk).update(review_state=ReviewState.REJECTED)
    assert_error(member.client().get(path_of(result)), 404)  # at access time
    file_withdrawn.send(sender="uploads", file_id=blob.pk, organization_id=owner.org.pk)
    assert ShareLink.objects.get(pk=result["link"]["id"]).revoked_reason == "withdrawn"


def test_new_content_ends_the_links(owner, member, blob):
    result = share(owner, blob, visibility="org")
    StoredFile.objects.filter(pk=blob.pk).update(sha256="f" * 64)
    assert_error(member.client().get(path_of(result)), 404)  # at access time
    file_content_changed.send(sender="uploads", file_id=blob.pk, organization_id=owner.org.pk)
    assert ShareLink.objects.get(pk=result["link"]["id"]).revoked_reason == "content_changed"


def test_expiry(owner, blob, anon):
    result = share(owner, blob, visibility="public", expires_in=3600)
    link = ShareLink.objects.get(pk=result["link"]["id"])
    assert abs((link.expires_at - timezone.now()) - timedelta(hours=1)) < timedelta(seconds=5)
    assert anon.get(path_of(result)).status_code == 200
    ShareLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(anon.get(path_of(result)), 404)
    later = timezone.now() + timedelta(days=2)
    result = share(owner, blob, visibility="public", expires_at=later.isoformat())
    assert ShareLink.objects.get(pk=result["link"]["id"]).expires_at == later


def test_tampered_and_unknown_tokens_are_404(owner, blob, anon):
    token = share(owner, blob, visibility="public")["token"]
    kind, prefix, secret = token.split("_", 2)
    for bad in (
        token[:-1] + ("x" if token[-1] != "x" else "y"),
        f"{kind}_{prefix}_",
        f"{kind}_000000000000_{secret}",
        "x",
        token + "a",
    ):
        assert_error(anon.get(f"/api/s/{bad}"), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "body",
    [
        {"visibility": "everyone"},
        {},
        {"visibility": "restricted"},
        {"visibility": "public", "users": ["usr_x"]},
        {"visibility": "public", "expires_in": 60, "expires_at": "2999-01-01T00:00:00Z"},
        {"visibility": "public", "expires_at": "2000-01-01T00:00:00Z"},
        {"visibility": "public", "expires_in": 0},
        {"visibility": "restricted", "emails": ["not-an-email"]},
    ],
)
def test_invalid_share_requests_are_400(owner, blob, body):
    response = owner.client().post(f"/api/files/{owner.org.pk}/{blob.pk}/share", body, format="json")
    assert_error(response, 400, "VALIDATION_ERROR")
    assert not ShareLink.objects.filter(file=blob).exists()
    blob.refresh_from_db()
    assert blob.visibility == "private"


def test_too_many_recipients(owner, blob, settings):
    settings.FILECONVERT = {**settings.FILECONVERT, "SHARE_MAX_RECIPIENTS": 2}
    body = {"visibility": "restricted", "emails": ["a@example.com", "b@example.com", "c@example.com"]}
    assert_error(owner.client().post(f"/api/files/{owner.org.pk}/{blob.pk}/share", body, format="json"), 400)


def test_who_may_share(owner, viewer, outsider, blob, anon):
    path = f"/api/files/{owner.org.pk}/{blob.pk}/share"
    assert_error(anon.post(path, {"visibility": "public"}, format="json"), 401)
    assert_error(viewer.client().post(path, {"visibility": "public"}, format="json"), 403, "INSUFFICIENT_SCOPE")
    assert_error(outsider.client().post(path, {"visibility": "public"}, format="json"), 404, "NOT_FOUND")
    other_path = f"/api/files/{outsider.org.pk}/{blob.pk}/share"
    assert_error(outsider.client().post(other_path, {"visibility": "public"}, format="json"), 404, "NOT_FOUND")
    assert not ShareLink.objects.exists()


# --- counting and audit ----------------------------------------------------------------------


def test_downloads_through_a_link_are_counted_and_audited(owner, blob, anon, member):
    result = share(owner, blob, visibility="public")
    link_id = result["link"]["id"]
    path = path_of(result)
    anon.get(path)
    member.client().get(path)
    anon.get(path, HTTP_RANGE="bytes=0-99")  # a body from byte 0: one more download
    anon.get(path, HTTP_RANGE="bytes=100-")  # a player's follow-up range: not a new download
    anon.head(path)
    etag = anon.head(path)["ETag"]
    assert anon.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 304
    link = ShareLink.objects.get(pk=link_id)
    assert link.download_count == 3
    assert link.last_downloaded_at is not None
    events = AuditEvent.objects.filter(action="share.download", target_id=link_id).order_by("pk")
    assert events.count() == 3
    assert [e.actor_id for e in events] == [None, member.user.pk, None]
    assert events[0].organization_id == owner.org.pk
    assert events[0].details == {"file_id": blob.pk, "visibility": "public", "ranged": False}
    assert events[2].details["ranged"] is True
    assert AuditEvent.objects.filter(action="share.create", target_id=link_id).count() == 1


def test_counting_is_an_atomic_increment(owner, blob):
    result = share(owner, blob, visibility="public")
    stale = ShareLink.objects.get(pk=result["link"]["id"])  # both writers hold the same snapshot
    share_download_record(link=stale, actor=None, ranged=False)
    share_download_record(link=stale, actor=None, ranged=False)
    assert ShareLink.objects.get(pk=stale.pk).download_count == 2


# --- /api/share-links --------------------------------------------------------------------------


def test_share_links_list_and_revoke(owner, viewer, outsider, blob, anon):
    result = share(owner, blob, visibility="public")
    link_id = result["link"]["id"]
    listed = data_of(viewer.client().get("/api/share-links"))["items"]
    assert [row["id"] for row in listed] == [link_id]
    assert listed[0]["active"] is True and listed[0]["file_id"] == blob.pk
    assert "token" not in listed[0] and "secret_hash" not in listed[0]
    assert data_of(outsider.client().get("/api/share-links"))["items"] == []
    assert_error(outsider.client().get(f"/api/share-links/{owner.org.pk}/{link_id}"), 404)
    assert_error(outsider.client().delete(f"/api/share-links/{owner.org.pk}/{link_id}"), 404)
    assert_error(viewer.client().delete(f"/api/share-links/{owner.org.pk}/{link_id}"), 403)
    assert anon.get(path_of(result)).status_code == 200
    assert owner.client().delete(f"/api/share-links/{owner.org.pk}/{link_id}").status_code == 204
    assert_error(anon.get(path_of(result)), 404)
    assert data_of(owner.client().get(f"/api/share-links/{owner.org.pk}/{link_id}"))["revoked_reason"] == "revoked"
    assert AuditEvent.objects.filter(action="share.revoke", target_id=link_id).count() == 1


# --- lifecycle hooks from the other apps ---------------------------------------------------------


def test_narrowing_through_the_files_resource_ends_the_wider_links(owner, member, blob, anon, django_capture_on_commit_callbacks):
    public = share(owner, blob, visibility="public")
    with django_capture_on_commit_callbacks(execute=True):
        org = share(owner, blob, visibility="org")
    with django_capture_on_commit_callbacks(execute=True):
        data_of(owner.client().patch(f"/api/files/{owner.org.pk}/{blob.pk}", {"visibility": "restricted"}, format="json"))
    reasons = dict(ShareLink.objects.filter(file=blob).values_list("pk", "revoked_reason"))
    assert reasons == {public["link"]["id"]: "narrowed", org["link"]["id"]: "narrowed"}
    assert_error(member.client().get(path_of(org)), 404)


def test_a_platform_admin_rejecting_the_file_revokes_its_links(
    owner, member, platform_admin, make_file, django_capture_on_commit_callbacks
):
    from review.services import admin_site_actor, file_reject

    staged = make_file(owner.org, BODY, status=FileStatus.STAGED, review_state=ReviewState.PENDING)
    link = share(owner, staged, visibility="org")
    assert member.client().get(path_of(link)).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        file_reject(actor=admin_site_actor(platform_admin.user), file=staged, reason="not allowed here")
    revoked = ShareLink.objects.get(pk=link["link"]["id"])
    assert revoked.revoked_at is not None and revoked.revoked_reason == "withdrawn"
    assert_error(member.client().get(path_of(link)), 404)


def test_a_member_signed_in_through_another_organization_follows_org_links(owner, blob, outsider):
    from accounts.models import Membership

    link = share(owner, blob, visibility="org")
    assert_error(outsider.client().get(path_of(link)), 404)
    Membership.objects.create(organization=owner.org, user=outsider.user, role="viewer")
    assert outsider.client().get(path_of(link)).status_code == 200  # their key is org B's; they are a member of A


def test_following_a_link_costs_a_fixed_number_of_queries(owner, blob, anon, django_assert_num_queries):
    path = path_of(share(owner, blob, visibility="public"))
    # One SELECT (link, file, organization joined), then the count UPDATE and the audit
    # INSERT in one transaction (a savepoint pair here, since the test runs in a transaction).
    with django_assert_num_queries(5):
        assert anon.get(path).status_code == 200
    with django_assert_num_queries(1):
        assert anon.get(path, HTTP_RANGE="bytes=10-20").status_code == 206  # not a new download


def test_share_links_filters_do_not_tell_other_organizations_files_apart(owner, outsider, blob, make_file):
    share(owner, blob, visibility="public")
    theirs = make_file(outsider.org, b"theirs")
    share(outsider, theirs, visibility="public")
    client = owner.client()
    assert len(data_of(client.get("/api/share-links", {"file_id": blob.pk}))["items"]) == 1
    assert data_of(client.get("/api/share-links", {"file_id": theirs.pk}))["items"] == []
    assert data_of(client.get("/api/share-links", {"file_id": "fil_missing"}))["items"] == []
    assert len(data_of(client.get("/api/share-links", {"active": "true", "visibility": "public"}))["items"]) == 1
    assert data_of(client.get("/api/share-links", {"active": "false"}))["items"] == []
