from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.scopes import UPLOAD_READ
from fileconvert.api.pagination import DEFAULT_LIMIT, MAX_LIMIT, parse_limit
from fileconvert.api.permissions import identity_of
from search import selectors
from search.api.serializers import SearchPageSerializer, SearchParamsSerializer
from search.backends import Filters


class SearchView(APIView):
    required_scopes = {"GET": UPLOAD_READ}

    @extend_schema(
        tags=["search"],
        summary="Full-text search over the organization's active files",
        description=(
            "Ranked hits (best first) among the caller's organization's files that are active and "
            "approved (or need no review). Searches the filename, the document title and the text "
            "extracted from PDF, office, text, markup and data files, EXIF and audio tags. Paginated "
            "with an opaque cursor over (score, id); a page can hold fewer than `limit` hits while "
            "`next_cursor` is set (a file withdrawn since it was indexed is left out). A query scores "
            "the matches of the newest `SEARCH_RANK_WINDOW` files (default 1000)."
        ),
        parameters=[
            SearchParamsSerializer,
            OpenApiParameter(
                "limit", OpenApiTypes.INT, OpenApiParameter.QUERY, description=f"1..{MAX_LIMIT}, default {DEFAULT_LIMIT}."
            ),
            OpenApiParameter("cursor", OpenApiTypes.STR, OpenApiParameter.QUERY, description="Opaque cursor from `next_cursor`."),
        ],
        responses=SearchPageSerializer,
    )
    def get(self, request: Request) -> Response:
        params = SearchParamsSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        page = selectors.search_files(
            actor=identity_of(request),
            q=data["q"],
            filters=Filters(
                dataset_id=data.get("dataset"),
                type=data.get("type"),
                created_after=data.get("created_after"),
                created_before=data.get("created_before"),
            ),
            limit=parse_limit(request),
            cursor=request.query_params.get("cursor") or None,
        )
        body = {"items": page.items, "next_cursor": page.next_cursor, "has_more": page.next_cursor is not None}
        return Response(SearchPageSerializer(body).data)
