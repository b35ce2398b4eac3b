"""GET /api/search through the real pipeline: upload -> processing -> file_activated ->
index task (Celery eager) -> query. Runs on SQLite FTS5 locally and on PostgreSQL
full-text search with DATABASE_URL (the same tests, one interface)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts import services as account_services
from search.models import SearchDocument
from search.services import document_index
from tests.conftest import assert_error, data_of
from tests.search import documents as d
from tests.search.conftest import set_review
from uploads.models import Dataset, FileStatus, ReviewState, StoredFile
from uploads.signals import file_content_changed, send_on_commit

pytestmark = pytest.mark.django_db


def search(persona, q: str | None = None, status: int = 200, **params):
    if q is not None:
        params["q"] = q
    response = persona.client().get("/api/search", params)
    return data_of(response, status) if status == 200 else response


def ids(page) -> list[str]:
    return [hit["id"] for hit in page["items"]]


class TestLifecycle:
    def test_text_file_found_by_a_word_in_it(self, member, no_review, put):
        stored = put(member, "notes.txt", b"The migration of the arctic tern is the longest.\n")
        assert stored.status == FileStatus.ACTIVE
        page = search(member, "tern")
        assert ids(page) == [stored.pk]
        hit = page["items"][0]
        assert hit["name"] == "notes.txt" and hit["content_type"] == "text/plain" and hit["kind"] == "text"
        assert hit["organization_id"] == member.org.pk and hit["score"] > 0
        assert "<mark>tern</mark>" in hit["snippet"]
        assert page["has_more"] is False and page["next_cursor"] is None

    def test_staged_file_is_never_found_until_approved(self, member, put, decide):
        set_review(member.org, True)
        stored = put(member, "secret.txt", b"A staged document about okapis.\n")
        assert stored.status == FileStatus.STAGED
        assert not SearchDocument.objects.filter(file=stored).exists()
        assert search(member, "okapis")["items"] == []
        # Even a stray index row (a bug elsewhere, a race) does not make it visible.
        assert document_index(file_id=stored.pk) == "not_searchable"
        assert search(member, "okapis")["items"] == []

        decide(stored, approve=True)
        assert ids(search(member, "okapis")) == [stored.pk]

    def test_rejection_removes_it(self, member, put, decide):
        set_review(member.org, True)
        stored = put(member, "dossier.txt", b"The dossier on the wombat.\n")
        decide(stored, approve=True)
        assert ids(search(member, "wombat")) == [stored.pk]
        StoredFile.objects.filter(pk=stored.pk).update(status=FileStatus.STAGED)  # a decision being re-made
        decide(stored, approve=False)
        assert not SearchDocument.objects.filter(file_id=stored.pk).exists()
        assert search(member, "wombat")["items"] == []

    def test_rejected_file_is_hidden_even_before_the_removal_task_runs(self, member, no_review, put):
        stored = put(member, "late.txt", b"The quetzal flies.\n")
        assert ids(search(member, "quetzal")) == [stored.pk]
        StoredFile.objects.filter(pk=stored.pk).update(review_state=ReviewState.REJECTED)  # no signal yet
        assert search(member, "quetzal")["items"] == []
        assert SearchDocument.objects.filter(file_id=stored.pk).exists()

    def test_deletion_removes_it(self, member, no_review, put, django_capture_on_commit_callbacks):
        stored = put(member, "gone.txt", b"Notes about the ibex.\n")
        assert ids(search(member, "ibex")) == [stored.pk]
        with django_capture_on_commit_callbacks(execute=True):
            response = member.client().delete(f"/api/files/{member.org.pk}/{stored.pk}")
        assert response.status_code == 204, response.content
        assert not SearchDocument.objects.filter(file_id=stored.pk).exists()
        assert search(member, "ibex")["items"] == []

    def test_changed_content_is_reindexed(self, member, no_review, put, eager_celery, django_capture_on_commit_callbacks):
        stored = put(member, "draft.txt", b"First draft mentions the pelican.\n")
        assert ids(search(member, "pelican")) == [stored.pk]
        from fileconvert import storage

        storage.save_bytes(stored.storage_key, b"Second draft mentions the cormorant.\n")
        with django_capture_on_commit_callbacks(execute=True):
            send_on_commit(file_content_changed, file_id=stored.pk, organization_id=stored.organization_id)
        assert search(member, "pelican")["items"] == []
        assert ids(search(member, "cormorant")) == [stored.pk]
        assert SearchDocument.objects.filter(file_id=stored.pk).count() == 1

    def test_reindexing_is_idempotent(self, member, no_review, put):
        stored = put(member, "twice.txt", b"The gharial basks.\n")
        assert document_index(file_id=stored.pk) == "indexed"
        assert document_index(file_id=stored.pk) == "indexed"
        assert SearchDocument.objects.filter(file_id=stored.pk).count() == 1
        assert ids(search(member, "gharial")) == [stored.pk]

    def test_index_task_for_a_missing_file_is_a_no_op(self, db):
        assert document_index(file_id="fil_doesnotexist") == "missing"


FAMILIES = [
    ("report.pdf", lambda: d.pdf_with_text(["The annual flamingo survey."]), "flamingo", "pdf"),
    ("memo.docx", lambda: d.docx_bytes(["Budget for the axolotl tank."]), "axolotl", "docx"),
    ("sheet.xlsx", lambda: d.xlsx_bytes([["animal"], ["capybara"]]), "capybara", "xlsx"),
    ("data.csv", lambda: b"name,animal\nann,chinchilla\n", "chinchilla", "csv"),
    ("data.tsv", lambda: b"name\tanimal\nann\tmarmoset\n", "marmoset", "tsv"),
    ("data.json", lambda: b'{"animal": "pangolin"}', "pangolin", "json"),
    ("feed.xml", lambda: b"<?xml version='1.0'?><feed><entry>the narwhal</entry></feed>", "narwhal", "xml"),
    ("readme.md", lambda: b"# Guide\n\nFeeding the **lemur**.\n", "lemur", "markdown"),
    ("page.html", lambda: b"<!DOCTYPE html><html><body><p>The tapir.</p></body></html>", "tapir", "html"),
    ("photo.jpg", lambda: d.jpeg_with_exif("Aurora over the glacier", "Ingrid"), "glacier", "jpeg"),
    ("song.mp3", lambda: d.mp3_with_tags("Nocturne", "Ludwig Zebrafinch"), "zebrafinch", "mp3"),
    ("mail.eml", lambda: d.eml_bytes("Hello", "About the hedgehog."), "hedgehog", "eml"),
]


@pytest.mark.parametrize(("name", "make", "word", "kind"), FAMILIES, ids=[f[3] for f in FAMILIES])
def test_each_family_is_indexed_and_found(member, no_review, put, name, make, word, kind):
    stored = put(member, name, make())
    assert (stored.status, stored.kind) == (FileStatus.ACTIVE, kind)
    document = SearchDocument.objects.get(file=stored)
    assert document.error_code == ""
    page = search(member, word)
    assert ids(page) == [stored.pk], (kind, document.body)
    assert "<mark>" in page["items"][0]["snippet"]


class TestHostileFiles:
    def test_xml_bomb_indexes_the_name_only(self, member, no_review, put):
        stored = put(member, "lolz-bomb.xml", d.billion_laughs())
        document = SearchDocument.objects.get(file=stored)
        assert (document.error_code, document.body) == ("UNSAFE_CONTENT", "")
        assert search(member, "lol")["items"] == []
        assert ids(search(member, "lolz")) == [stored.pk]  # still found by its name

    def test_external_entity_never_reads_local_files(self, member, no_review, put):
        stored = put(member, "xxe.xml", d.external_entity_xml())
        document = SearchDocument.objects.get(file=stored)
        assert document.error_code == "UNSAFE_CONTENT"
        assert "root" not in document.body
        assert search(member, "root")["items"] == []

    def test_zip_bomb_docx_indexes_the_name_only(self, member, no_review, put, settings):
        settings.FILECONVERT = {**settings.FILECONVERT, "SEARCH_MAX_UNZIPPED_BYTES": 8 * 1024 * 1024}
        stored = put(member, "bomb-report.docx", d.zip_bomb_docx(100 * 1024 * 1024))
        assert stored.kind == "docx"
        document = SearchDocument.objects.get(file=stored)
        assert document.error_code == "ARCHIVE_TOO_LARGE"
        assert ids(search(member, "bomb")) == [stored.pk]

    def test_extraction_timeout_indexes_the_name_only(self, member, no_review, put, settings):
        # A deadline no child process can meet: the sandbox kills it, the name is still indexed.
        settings.FILECONVERT = {**settings.FILECONVERT, "SEARCH_EXTRACT_TIMEOUT_SECONDS": 0.001}
        stored = put(member, "slow-aardwolf.txt", b"the aardwolf report\n")
        document = SearchDocument.objects.get(file=stored)
        assert (document.error_code, document.body) == ("EXTRACTION_TIMEOUT", "")
        assert ids(search(member, "aardwolf")) == [stored.pk]

    def test_script_in_a_document_is_escaped_in_the_snippet(self, member, no_review, put):
        # In a PDF the text is kept verbatim (an HTML file's scripts are dropped at extraction).
        put(member, "xss.pdf", d.pdf_with_text(['Beware <script>alert("owned")</script> the mongoose & co.']))
        snippet = search(member, "mongoose")["items"][0]["snippet"]
        assert "<mark>mongoose</mark>" in snippet
        assert "<script" not in snippet
        assert "alert(&quot;owned&quot;)" in snippet
        assert snippet.replace("<mark>", "").replace("</mark>", "").count("<") == 0
        if connection.vendor == "sqlite":  # ts_headline drops what its parser takes for tags
            assert "&lt;script&gt;" in snippet

    def test_markup_in_a_filename_is_escaped(self, member, no_review, put):
        put(member, "<img src=x onerror=alert(1)>kinkajou.txt", b"nothing to see\n")
        snippet = search(member, "kinkajou")["items"][0]["snippet"]
        assert "<img" not in snippet
        assert "<mark>kinkajou</mark>" in snippet


class TestTenancyAndAuth:
    def test_other_organization_never_sees_hits(self, member, outsider, no_review, put):
        mine = put(member, "mine.txt", b"Our shared word is serendipity.\n")
        theirs = put(outsider, "theirs.txt", b"Their word is serendipity too.\n")
        assert ids(search(member, "serendipity")) == [mine.pk]
        assert ids(search(outsider, "serendipity")) == [theirs.pk]

    def test_other_organizations_dataset_filter_is_a_404(self, member, outsider, no_review, put):
        put(outsider, "x.txt", b"the armadillo\n", dataset="Theirs")
        theirs = Dataset.objects.get(organization=outsider.org, name="Theirs")
        assert_error(search(member, "armadillo", status=404, dataset=theirs.pk), 404, "NOT_FOUND")
        assert_error(search(member, "armadillo", status=404, dataset="dset_missing"), 404, "NOT_FOUND")

    def test_viewer_may_search(self, viewer, member, no_review, put):
        stored = put(member, "v.txt", b"the viewer finds the dugong\n")
        assert ids(search(viewer, "dugong")) == [stored.pk]

    def test_anonymous_is_401(self, anon):
        assert_error(anon.get("/api/search", {"q": "x"}), 401)

    def test_bad_key_is_401(self, anon):
        anon.credentials(HTTP_X_API_KEY="fck_nothing_wrong")
        assert_error(anon.get("/api/search", {"q": "x"}), 401)

    def test_credential_without_upload_read_is_403(self, member):
        _key, raw = account_services.api_key_issue_for(org=member.org, user=member.user, name="narrow", scopes=["org.read"])
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_X_API_KEY=raw)
        body = assert_error(client.get("/api/search", {"q": "x"}), 403, "INSUFFICIENT_SCOPE")
        assert body["details"]["required_scope"] == "upload.read"


class TestRankingAndSnippets:
    def test_filename_match_ranks_above_body_match(self, member, no_review, put):
        in_body = put(member, "notes.txt", b"A long note that mentions the platypus once among many other words here.\n")
        in_name = put(member, "platypus.txt", b"A long note about nothing in particular among many other words here.\n")
        page = search(member, "platypus")
        assert ids(page) == [in_name.pk, in_body.pk]
        assert page["items"][0]["score"] > page["items"][1]["score"]

    def test_document_title_ranks_above_body(self, member, no_review, put):
        in_body = put(member, "a.pdf", d.pdf_with_text(["Minutes: the budget for the heron pond was approved."]))
        titled = put(member, "b.pdf", d.pdf_with_text(["Minutes: the budget for the pond was approved."], title="Heron"))
        assert ids(search(member, "heron")) == [titled.pk, in_body.pk]

    def test_phrase_negation_and_or(self, member, no_review, put):
        red = put(member, "1.txt", b"the red panda climbs\n")
        giant = put(member, "2.txt", b"the giant panda eats\n")
        other = put(member, "3.txt", b"a red fox runs\n")
        assert ids(search(member, '"red panda"')) == [red.pk]
        assert ids(search(member, "panda -giant")) == [red.pk]
        assert set(ids(search(member, "giant or fox"))) == {giant.pk, other.pk}

    def test_query_syntax_characters_are_just_text(self, member, no_review, put):
        stored = put(member, "c.txt", b"the koala naps\n")
        for q in ['koala"', "koala*", "(koala", "koala)", "koala:", "^koala", '"koala', "koala -", "{koala}", "koala;--"]:
            assert ids(search(member, q)) == [stored.pk], q

    def test_stemming(self, member, no_review, put):
        stored = put(member, "s.txt", b"the otters were swimming\n")
        assert ids(search(member, "otter swim")) == [stored.pk]


class TestFilters:
    def test_dataset_type_and_dates(self, member, no_review, put):
        pdf = put(member, "q.pdf", d.pdf_with_text(["the manatee"]), dataset="Reports")
        txt = put(member, "q.txt", b"the manatee\n")
        reports = Dataset.objects.get(organization=member.org, name="Reports")
        assert set(ids(search(member, "manatee"))) == {pdf.pk, txt.pk}
        assert ids(search(member, "manatee", dataset=reports.pk)) == [pdf.pk]
        assert ids(search(member, "manatee", type="application/pdf")) == [pdf.pk]
        assert ids(search(member, "manatee", type="text")) == [txt.pk]
        assert search(member, "manatee", type="image/png")["items"] == []

        past = timezone.now() - timedelta(days=3)
        StoredFile.objects.filter(pk=pdf.pk).update(created_at=past)
        cut = (timezone.now() - timedelta(days=1)).isoformat()
        assert ids(search(member, "manatee", created_after=cut)) == [txt.pk]
        assert ids(search(member, "manatee", created_before=cut)) == [pdf.pk]
        assert ids(search(member, "manatee", created_after="2000-01-01", created_before=cut)) == [pdf.pk]

    def test_bad_filters(self, member):
        assert_error(search(member, "x", status=400, created_after="yesterday"), 400, "VALIDATION_ERROR")
        body = assert_error(
            search(member, "x", status=400, created_after="2025-02-01T00:00:00Z", created_before="2025-01-01T00:00:00Z"),
            400,
            "VALIDATION_ERROR",
        )
        assert "created_before" in body["details"]["fields"]


class TestPagination:
    def test_pages_cover_every_hit_once_in_rank_order(self, member, no_review, put):
        # Different term frequencies give different scores; equal ones tie-break on id.
        made = [put(member, f"f{i}.txt", (b"hoopoe " * (1 + i % 4)) + b"filler words\n").pk for i in range(7)]
        everything = search(member, "hoopoe", limit=100)
        assert sorted(ids(everything)) == sorted(made)
        ordered = [(-hit["score"], hit["id"]) for hit in everything["items"]]
        assert ordered == sorted(ordered)

        seen, cursor, pages = [], None, 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = search(member, "hoopoe", **params)
            seen += ids(page)
            pages += 1
            cursor = page["next_cursor"]
            assert page["has_more"] == (cursor is not None)
            if not cursor:
                break
        assert seen == ids(everything)
        assert pages == 3

    def test_bad_cursor_and_limit(self, member):
        assert_error(search(member, "x", status=400, cursor="garbage"), 400, "VALIDATION_ERROR")
        from fileconvert.api.pagination import encode_cursor

        assert_error(search(member, "x", status=400, cursor=encode_cursor(["fil_x", "fil_y"])), 400, "VALIDATION_ERROR")
        assert_error(search(member, "x", status=400, limit=0), 400, "VALIDATION_ERROR")
        assert_error(search(member, "x", status=400, limit=101), 400, "VALIDATION_ERROR")


class TestBadQueries:
    def test_missing_query(self, member):
        assert_error(search(member, status=400), 400, "VALIDATION_ERROR")

    @pytest.mark.parametrize("q", ["", "   ", "\t"])
    def test_empty_query(self, member, q):
        assert_error(search(member, q, status=400), 400, "VALIDATION_ERROR")

    def test_too_long_query(self, member, settings):
        body = assert_error(search(member, "a" * 257, status=400), 400, "VALIDATION_ERROR")
        assert "q" in body["details"]["fields"]

    @pytest.mark.parametrize("q", ["!!!", "-excluded", '""', "or"])
    def test_query_without_a_word(self, member, q):
        assert_error(search(member, q, status=400), 400, "VALIDATION_ERROR")

    def test_stopwords_only_is_an_empty_result_not_an_error(self, member, no_review, put):
        put(member, "t.txt", b"the and of\n")
        page = search(member, "zzyzx")
        assert page["items"] == []


def test_query_count_does_not_grow_with_the_hits(member, no_review, put):
    from django.test.utils import CaptureQueriesContext

    put(member, "k0.txt", b"the kestrel hovers\n", dataset="Birds")
    for i in range(1, 6):
        put(member, f"k{i}.txt", b"the merlin hovers\n", dataset="Birds")

    def queries(q: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            page = search(member, q)
        assert {hit["dataset_name"] for hit in page["items"]} == {"Birds"}
        return len(captured.captured_queries)

    assert queries("kestrel") == queries("merlin")  # 1 hit and 5 hits


def test_backend_matches_the_database(db):
    from search.backends import get_backend

    assert get_backend().vendor == connection.vendor


def test_withdrawn_signal_for_an_unknown_file_is_harmless(db):
    from search.services import document_remove

    assert document_remove(file_id="fil_unknown") == "absent"


def test_reconcile_repairs_lost_signals(member, no_review, put):
    from search.services import documents_reconcile

    lost = put(member, "lost.txt", b"the signal for this jerboa was lost\n")
    stale = put(member, "stale.txt", b"this gerbil was rejected behind our back\n")
    SearchDocument.objects.filter(file=lost).delete()
    StoredFile.objects.filter(pk=stale.pk).update(review_state=ReviewState.REJECTED)

    assert documents_reconcile() == {"enqueued": 1, "removed": 1}  # eager Celery: indexed inline

    assert ids(search(member, "jerboa")) == [lost.pk]
    assert not SearchDocument.objects.filter(file=stale).exists()
    assert documents_reconcile() == {"enqueued": 0, "removed": 0}


def test_rank_window_bounds_the_ranked_matches_to_the_newest(member, no_review, put, settings):
    oldest = put(member, "a.txt", b"loris loris loris loris\n")  # the best match, but indexed first
    middle = put(member, "b.txt", b"loris once\n")
    newest = put(member, "c.txt", b"loris once again\n")
    assert ids(search(member, "loris"))[0] == oldest.pk
    settings.FILECONVERT = {**settings.FILECONVERT, "SEARCH_RANK_WINDOW": 2}
    assert set(ids(search(member, "loris"))) == {middle.pk, newest.pk}
    assert ids(search(member, "loris loris"))  # the window applies per query, after matching


class TestThroughTheReviewApi:
    """The same lifecycle through the review app's real endpoints (seed 001)."""

    @staticmethod
    def url(stored: StoredFile, suffix: str) -> str:
        return f"/v1/admin/review/objects/{stored.organization_id}/{stored.pk}{suffix}"

    def test_approve_makes_it_searchable(self, member, platform_admin, put, eager_celery, django_capture_on_commit_callbacks):
        set_review(member.org, True)
        stored = put(member, "pending-review.txt", b"The caracal waits for review.\n")
        assert search(member, "caracal")["items"] == []
        with django_capture_on_commit_callbacks(execute=True):
            data_of(platform_admin.client().post(self.url(stored, "/approve")))
        assert ids(search(member, "caracal")) == [stored.pk]

    def test_rejected_is_never_searchable(self, member, platform_admin, put, eager_celery, django_capture_on_commit_callbacks):
        set_review(member.org, True)
        stored = put(member, "rejected.txt", b"The serval is rejected.\n")
        with django_capture_on_commit_callbacks(execute=True):
            data_of(platform_admin.client().post(self.url(stored, "/reject"), {"reason": "not allowed"}, format="json"))
        assert document_index(file_id=stored.pk) == "not_searchable"  # a late index task changes nothing
        assert not SearchDocument.objects.filter(file=stored).exists()
        assert search(member, "serval")["items"] == []


def test_a_stale_row_shortens_its_page_but_not_the_listing(member, no_review, put):
    made = [put(member, f"s{i}.txt", b"the stoat runs\n").pk for i in range(4)]
    hidden = made[1]
    StoredFile.objects.filter(pk=hidden).update(status=FileStatus.STAGED)  # index row left behind
    seen, cursor = [], None
    while True:
        page = search(member, "stoat", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += ids(page)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(set(made) - {hidden})


class TestRankWindowOnPostgres:
    """PostgreSQL finds the window (the newest SEARCH_RANK_WINDOW matches) either by walking the
    organization's files newest first or by sorting every match; the choice is a cost, never a result."""

    @pytest.fixture(autouse=True)
    def postgres_only(self, db):
        if connection.vendor != "postgresql":
            pytest.skip("the two window strategies are PostgreSQL's")

    @pytest.fixture
    def ocelots(self, member, outsider, no_review, put, settings) -> list[StoredFile]:
        made = [
            put(member, f"o{i}.txt", ("ocelot " * (i % 3 + 1) + "prowls\n").encode(), **({"dataset": "Cats"} if i % 2 else {}))
            for i in range(6)
        ]
        put(outsider, "theirs.txt", b"ocelot ocelot ocelot ocelot\n")  # the newest and best, another tenant's
        StoredFile.objects.filter(pk=made[4].pk).update(status=FileStatus.STAGED)  # its index row is left behind
        settings.FILECONVERT = {**settings.FILECONVERT, "SEARCH_RANK_WINDOW": 4}
        return made

    @staticmethod
    def listing(member, monkeypatch, *, sort: bool, **params) -> list[tuple[str, float]]:
        from search.backends import PostgresBackend

        monkeypatch.setattr(PostgresBackend, "_sort_window", lambda self, matches, organization_id: sort)
        seen, cursor = [], None
        while True:
            page = search(member, "ocelot", limit=2, **params, **({"cursor": cursor} if cursor else {}))
            seen += [(hit["id"], hit["score"]) for hit in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                return seen

    def test_sorting_and_walking_give_the_same_pages(self, member, monkeypatch, ocelots):
        cats = Dataset.objects.get(organization=member.org, name="Cats")
        for params in ({}, {"dataset": cats.pk}):
            walked = self.listing(member, monkeypatch, sort=False, **params)
            assert self.listing(member, monkeypatch, sort=True, **params) == walked
            scores = [score for _, score in walked]
            assert scores == sorted(scores, reverse=True)
        # The newest 4 of the organization's matches; the stale one takes its place in the window.
        assert {file_id for file_id, _ in self.listing(member, monkeypatch, sort=True)} == {
            ocelots[5].pk,
            ocelots[3].pk,
            ocelots[2].pk,
        }
        assert {file_id for file_id, _ in self.listing(member, monkeypatch, sort=True, dataset=cats.pk)} == {
            ocelots[5].pk,
            ocelots[3].pk,
            ocelots[1].pk,
        }

    def test_the_choice_follows_the_planner_estimates(self, member, monkeypatch, ocelots):
        from search import backends

        backend = backends.PostgresBackend()
        cats = Dataset.objects.get(organization=member.org, name="Cats")
        tsquery = backend._tsquery(backends.parse_query("ocelot"))
        for filters in (backends.Filters(), backends.Filters(dataset_id=cats.pk)):
            matches = backends.indexed_documents(member.org.pk, filters, org_as_range=True).filter(vector=tsquery)
            monkeypatch.setattr(backends, "SORT_WALK_RATIO", 0.0)  # no match count is small enough: walk
            assert backend._sort_window(matches, member.org.pk) is False
            monkeypatch.setattr(backends, "SORT_WALK_RATIO", 1e9)
            assert backend._sort_window(matches, member.org.pk) is True
