"""Query parameters and responses of the dataset browser (`GET /api/browse`, `/api/browse/facets`)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from openpairs.core.status import Status

MAX_PAGE = 200
DEFAULT_PAGE = 48
SCORES = ("similarity", "punsafe", "aesthetic")
KEPT, DROPPED, NO_LANGUAGE = "ok", "dropped", "none"
CURSOR_PATTERN = r"^[0-9]{1,20}:[0-9]{1,40}$"
NUMBER_PATTERN = r"^[0-9]{1,20}$"
_HTTP_STATUS = re.compile(r"^http_[1-5][0-9]{2}$")
SKIPPED = "shards whose files could not be read, with why: their rows are missing from the answer"
KNOWN_STATUSES = frozenset(s.value for s in Status) | {DROPPED}


def _score(name: str, bound: str) -> float | None:
    return Field(
        default=None, allow_inf_nan=False, description=f"only rows whose {name} is {bound} (scored rows only)"
    )


class BrowseQuery(BaseModel):
    """One page request: filters (all optional, combined with AND), page size and where to start."""

    model_config = ConfigDict(extra="forbid")

    status: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_]{1,40}$",
        description="ok (kept), dropped (any reason) or one reason: a download status such as http_404 "
        "or opted_out, or a filter status such as below_similarity",
    )
    language: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8}){0,2}$",
        description="the caption's language code (as extract detected it); `none`: no language detected",
    )
    min_similarity: float | None = _score("similarity", ">= this")
    max_similarity: float | None = _score("similarity", "<= this")
    min_punsafe: float | None = _score("punsafe", ">= this")
    max_punsafe: float | None = _score("punsafe", "<= this")
    min_aesthetic: float | None = _score("aesthetic", ">= this")
    max_aesthetic: float | None = _score("aesthetic", "<= this")
    limit: int = Field(default=DEFAULT_PAGE, ge=1, le=MAX_PAGE, description="rows per page")
    cursor: str | None = Field(
        default=None,
        pattern=CURSOR_PATTERN,
        description="`next` of the previous page (absent: the first page)",
    )
    count: bool = Field(
        default=False, description="also count every matching row (one pass over the dataset)"
    )

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is not None and value not in KNOWN_STATUSES and not _HTTP_STATUS.match(value):
            raise ValueError(f"unknown status {value!r}: ok, dropped, http_<code> or one of {_names()}")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> BrowseQuery:
        for name in SCORES:
            low, high = self.range(name)
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} ({low}) is above max_{name} ({high})")
        return self

    def range(self, score: str) -> tuple[float | None, float | None]:
        """The (min, max) asked for one score (None: unbounded)."""
        return getattr(self, f"min_{score}"), getattr(self, f"max_{score}")


def _names() -> str:
    return ", ".join(sorted(KNOWN_STATUSES - {DROPPED, KEPT}))


class BrowseRow(BaseModel):
    """One candidate of the build: what it is, its scores, and whether it was kept (or why not)."""

    key: str
    shard: str = Field(description="the download shard holding the row")
    url: str | None = None
    caption: str | None = None
    width: int | None = Field(None, description="stored image width (kept and scored rows)")
    height: int | None = Field(None, description="stored image height")
    original_width: int | None = None
    original_height: int | None = None
    language: str | None = None
    license: str | None = None
    similarity: float | None = None
    punsafe: float | None = None
    aesthetic: float | None = None
    nsfw: str | None = None
    status: str = Field(description="ok (kept) or why the row was dropped")
    dropped_at: str | None = Field(None, description="download or filter (null when kept)")
    reason: str | None = Field(None, description="the download's error message or opt-out signal")
    image: str | None = Field(None, description="URL of the stored image (kept rows only)")


class BrowsePage(BaseModel):
    """One page of matching rows, in (shard, key) order."""

    rows: list[BrowseRow]
    limit: int
    next: str | None = Field(None, description="cursor of the next page (null: this is the last page)")
    total: int | None = Field(None, description="rows matching the filters (only when count=true)")
    skipped: dict[str, str] = Field({}, description=SKIPPED)


class BrowseFacets(BaseModel):
    """What the filters can choose from: row counts by status and by language over the whole build."""

    shards: int
    rows: int
    statuses: dict[str, int]
    languages: dict[str, int] = Field(description="by language code; `none`: no language detected")
    filter_settings: dict[str, object] | None = Field(None, description="filter/filter_config.json")
    skipped: dict[str, str] = Field({}, description=SKIPPED)
