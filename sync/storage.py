"""The storage interface: every operation the engine and its readers ask of a database.

``Store`` is a ``typing.Protocol``. ``sync.store.SQLiteStore`` implements it today (mypy --strict
checks that, at the end of this module); a PostgreSQL store would implement the same methods.
No module outside ``sync/store.py`` runs SQL (``tests/test_storage_interface.py`` keeps it so):
the console, the dashboard figures, the CLI and the proxy reports ask for what they need by
name, with the caller's scope keys as a parameter, never as a fragment of a query.

Words used in the docstrings below:

* a *record* has an id, a version, a deleted flag (a *tombstone* when set), its fields (*data*),
  per-field metadata, the scope keys it is visible under and created/updated stamps;
* *live*: not a tombstone;
* *visible under keys*: the record's stored scope keys meet the given keys (``scope.visible``);
* *held-to deadline*: a matter's ``effective_deadline``, else its ``deadline``;
* *local date*: the calendar date in China Standard Time (UTC+8) of a stored time, which carries
  its own offset; None when the stored value is not a time;
* *Julian day*: a time as a fractional Julian day number (UTC), which orders times whatever their
  offsets;
* *(id, data) pairs*: a record's id and its fields, as ``(str, dict)``.

What a backend must guarantee is in ``docs/storage.md``: one write transaction at a time per
``transaction()``, all or nothing; consistent reads in ``read()``; a sequence that only grows and
a change feed read in that order.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Literal, Protocol, Sequence, TypeVar

if TYPE_CHECKING:
    from .store import SQLiteStore, StoredRecord

IdData = tuple[str, dict[str, Any]]
"""A record's id and its fields."""

MatterSort = Literal["raised", "raised_asc", "deadline", "updated", "overdue_days"]
MATTER_SORTS: tuple[MatterSort, ...] = ("raised", "raised_asc", "deadline", "updated", "overdue_days")
"""raised: newest raise time first; raised_asc: oldest first; deadline: earliest ``deadline`` first,
none last; updated: most recently written first; overdue_days: the matters whose clock runs (status
set, not ``ended``, not a stopped clock) by held-to deadline, earliest first — the most days overdue
first, then the soonest due — and the others after them. Ties: by matter id."""


@dataclass(frozen=True)
class MatterFilter:
    """What the console's matter lists filter on; an empty value does not filter."""

    statuses: tuple[str, ...] = ()      # the status is one of these
    category: str = ""
    line: str = ""
    channel: str = ""
    handling_mode: str = ""
    assignee_id: str = ""
    supervised: bool = False            # only matters under supervision (督办)
    overdue_on: str = ""                # only matters overdue on this date (``workflow.is_overdue``) ...
    ended: tuple[str, ...] = ()         # ... their status set, not one of these, and not a stopped clock
    text: str = ""                      # in the title, description, head of household's name or address,
    #                                     or the work-order number exactly
    due_soon_on: str = ""               # only matters 即将超期 on this date (``workflow.is_due_soon``) ...
    due_soon_until: str = ""            # ... held to a deadline from it to this one (``workflow.due_soon_until``)
    not_statuses: tuple[str, ...] = ()  # the status is none of these (a matter without one passes)
    raised_from: str = ""               # raised on this local date or later ...
    raised_before: str = ""             # ... and before this one
    # issue 14 — the dashboard's cards open lists of exactly what they count:
    resolved_from: str = ""             # the local date of resolved_at (else closed_at) is on or after ...
    resolved_before: str = ""           # ... and before this one
    with_deadline: bool = False         # only matters held to a deadline (``workflow.held_to``)
    on_time: bool = False               # only matters resolved on or before the deadline they are held to
    delegated: bool = False             # only matters with a live delegation event (the resident authorised an agent)
    feedback: str = ""                  # "rated": the matter has a rating; "satisfied": its latest rating is satisfied


@dataclass(frozen=True)
class MatterRow:
    """A matter with its household, as the console's lists show them."""

    id: str
    version: int
    data: dict[str, Any]
    household_id: str
    household: dict[str, Any]


@dataclass(frozen=True)
class DashboardMatter:
    """One matter as the dashboard counts it."""

    id: str
    grid_id: str                 # its household's grid
    status: str | None
    handling_mode: str | None
    held_to: str | None          # the held-to deadline (a date)
    raised_on: str               # the local date of raised_at
    resolved_on: str | None      # the local date of resolved_at, else of closed_at


@dataclass(frozen=True)
class Feedback:
    """A resident's feedback event on a matter (``rating`` 1-5 and/or ``satisfied``, as sent)."""

    matter_id: str
    at: float | None             # the event's ``at`` as a Julian day
    rating: Any
    satisfied: Any


@dataclass(frozen=True)
class TaggedHousehold:
    """A household with, for each tag asked about, whether its ``tags`` hold it."""

    id: str
    grid_id: str
    tags: tuple[bool, ...]


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    at: str
    user_id: str | None
    username: str | None         # the user's username, when the user exists
    action: str
    collection: str | None
    record_id: str | None
    details: str | None          # the details as the JSON text written with the entry


T = TypeVar("T")


class Store(Protocol):
    """Everything the engine, the console, the dashboard, the CLI and the proxy reports need."""

    # -- the connection ------------------------------------------------------------------------
    @property
    def write_lock(self) -> threading.RLock:
        """The lock that serialises this process's writers (re-entrant)."""

    def close(self) -> None:
        """Release the connection; the store is not used afterwards."""

    def migrate(self) -> list[str]:
        """Apply the schema changes not yet applied; returns their names, in order."""

    def checkpoint(self) -> None:
        """Make the database whole in its main file before the file is moved (nothing, where there is none)."""

    # -- transactions --------------------------------------------------------------------------
    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction, all of it or none; entered again inside itself, it joins the outer one."""

    def read(self) -> AbstractContextManager[None]:
        """A consistent snapshot for several reads (one pull page); inside a transaction, that transaction."""

    def savepoint(self) -> AbstractContextManager[None]:
        """Inside a transaction: on an exception, undo the writes made within it and re-raise."""

    def grouped(self, work: Callable[[], T]) -> T:
        """Run ``work`` in a write transaction shared with the callers waiting meanwhile (group commit),
        inside a savepoint of its own; return its value (or raise its exception) after the commit."""

    # -- counters and server metadata ----------------------------------------------------------
    def next_seq(self) -> int:
        """The next value of the server's change sequence (grows by one, never reused), within the transaction."""

    def current_seq(self) -> int:
        """The last value the change sequence gave."""

    def next_counter(self, name: str) -> int:
        """The next value (from 1) of a named counter other than the sequence, within the write
        transaction (given back if it rolls back): the matters' work-order serials."""

    def get_meta(self, key: str) -> str | None:
        """The server metadata value of ``key`` (epoch, secret, horizon …), or None."""

    def set_meta(self, key: str, value: str) -> None:
        """Set the server metadata value of ``key``."""

    # -- records and the change feed -----------------------------------------------------------
    def get(self, coll: str, rid: str) -> StoredRecord | None:
        """The record, tombstone included, or None."""

    def get_many(self, coll: str, ids: Iterable[str]) -> dict[str, StoredRecord]:
        """The records of these ids that exist (tombstones included), by id."""

    def prefetch(self, coll: str, ids: Iterable[str]) -> None:
        """A hint inside a transaction: these records will be read (a backend may read them at once)."""

    def put(self, rec: StoredRecord, old_keys: Iterable[str], seq: int) -> None:
        """Write the record and enter it in the change feed at ``seq`` under its old and new keys."""

    def set_keys(self, coll: str, rid: str, old_keys: Iterable[str], new_keys: Iterable[str], seq: int) -> None:
        """Change only the record's scope keys; the feed gets ``seq`` under the keys it entered or left."""

    def ids_where(self, coll: str, column: str, value: str) -> list[str]:
        """Ids of the records (tombstones included) whose indexed field ``column`` equals ``value``."""

    def matter_ids_in_category(self, code: str) -> list[str]:
        """Ids of the matters (tombstones included) of the category ``code``."""

    def active_assignees(self, household_id: str, ended_statuses: Iterable[str]) -> set[str]:
        """The assignees of the household's live matters whose status is not one of ``ended_statuses``."""

    def feed_page(self, keys: Iterable[str], after: int, limit: int) -> list[tuple[int, str, str]]:
        """(seq, collection, id) feed entries after ``after``: up to ``limit`` + 1 per key, all in seq order."""

    # -- areas ---------------------------------------------------------------------------------
    def all_areas(self) -> list[tuple[str, str | None, str, bool, bool]]:
        """(id, parent_id, level, mountain, deleted) of every area, tombstones included."""

    def areas_version(self) -> int:
        """A number that changes whenever an area changes (the area tree's cache key)."""

    # -- idempotency ---------------------------------------------------------------------------
    def logged_result(self, user_id: str, mid: str) -> dict[str, Any] | None:
        """The result recorded for the user's mutation ``mid``, or None."""

    def logged_results(self, user_id: str, mids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The results recorded for those of the user's ``mids`` that have one (this transaction's too), by mid."""

    def log_result(self, user_id: str, mid: str, device_id: str, result: dict[str, Any], at: str) -> None:
        """Record a mutation's result (in the transaction of its effects)."""

    # -- accounts ------------------------------------------------------------------------------
    def user_by_username(self, username: str) -> StoredRecord | None:
        """The live user with this username, or None."""

    def password_hash(self, user_id: str) -> str | None:
        """The user's password hash, or None."""

    def set_password_hash(self, user_id: str, hashed: str, must_change: bool = False) -> None:
        """Set the user's password hash; ``must_change`` marks it one-time (an initial password)."""

    def password_must_change(self, user_id: str) -> bool:
        """Whether the user's password is a one-time one, to be replaced at the next sign-in."""

    def one_time_password_users(self) -> set[str]:
        """The ids of the users whose password is one-time (not signed in since it was set)."""

    def add_device(self, device: dict[str, Any]) -> None:
        """Register a device: id, user_id, name, token_hash, lineage_id, created_at."""

    def device(self, device_id: str) -> dict[str, Any] | None:
        """The device (every column: revoked_at, last_seen_at, outbox_depth …), or None."""

    def device_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The device whose token has this hash, or None."""

    def devices(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """The user's devices by creation time; without a user, every device by user then creation time."""

    def touch_device(self, device_id: str, column: str, at: str, outbox_depth: int | None = None,
                     app_version: str | None = None) -> None:
        """Set last_seen_at and ``column`` (last_push_at or last_pull_at) to ``at``, and what the device reported."""

    def revoke_device(self, device_id: str, by: str | None, at: str) -> bool:
        """Revoke the device; False when it is unknown or already revoked."""

    # -- blobs ---------------------------------------------------------------------------------
    def blob(self, sha: str) -> dict[str, Any] | None:
        """The blob's row (length, complete, uploaded_by, created_at, completed_at), or None."""

    def blob_upload(self, sha: str, user_id: str) -> dict[str, Any] | None:
        """The user's unfinished upload of the blob, or None."""

    def blob_uploads_unfinished(self) -> list[dict[str, Any]]:
        """Every unfinished upload, oldest first."""

    def blob_pending_bytes(self, user_id: str) -> int:
        """The bytes announced by the user's unfinished uploads."""

    def blob_upload_start(self, sha: str, user_id: str, length: int, partial: str, at: str) -> None:
        """Start the user's upload of the blob (the blob becomes known, incomplete, if it was not)."""

    def blob_chunk_received(self, sha: str, user_id: str, partial: str, start: int, length: int, name: str,
                            at: str) -> bool:
        """Count a chunk stored as ``name`` at ``start`` of the user's upload ``partial`` (its offset moves on
        by ``length``); False, changing nothing, unless that upload holds exactly ``start`` bytes now."""

    def blob_upload_received(self, sha: str, user_id: str, received: int, touched_at: str) -> None:
        """Set how many bytes an upload begun before chunks were counted holds."""

    def blob_chunks(self, sha: str, user_id: str) -> list[tuple[int, int, str]]:
        """The counted chunks of the user's upload, ``(start, length, name)`` in order."""

    def blob_upload_forget(self, sha: str, user_id: str, partial: str, untouched_before: str | None = None) -> bool:
        """End the user's upload ``partial`` without a blob (expired only if untouched since
        ``untouched_before``), its chunks and an incomplete blob nobody else uploads; whether there was one."""

    def blob_uploaded(self, sha: str, user_id: str, length: int, at: str) -> None:
        """The user sent every byte: they hold the blob, their citations are proven, the blob is complete."""

    def blob_holds(self, sha: str, user_id: str) -> bool:
        """Whether the user uploaded every byte of the blob."""

    def cite_blobs(self, coll: str, rid: str, citations: Iterable[tuple[str, str | None, bool]]) -> None:
        """Add the record's citations (sha256, cited_by, proven)."""

    def uncite_blobs(self, coll: str, rid: str, shas: Iterable[str]) -> None:
        """Remove the record's citations of these blobs."""

    def blob_referrers(self, sha: str) -> list[tuple[str, str]]:
        """(collection, record id) of every record citing the blob."""

    def blob_proven_referrers(self, sha: str) -> list[tuple[str, str]]:
        """(collection, record id) of the records whose citation of the blob is proven."""

    def blob_citation_proven(self, sha: str, coll: str, rid: str) -> bool:
        """Whether the record cites the blob with a proven citation."""

    def blob_citers(self, sha: str) -> list[str]:
        """The users who cited the blob, sorted."""

    def blob_refs_of(self, coll: str, rid: str) -> list[str]:
        """The blobs the record cites."""

    # -- audit ---------------------------------------------------------------------------------
    def audit(self, user_id: str | None, action: str, coll: str | None = None, rid: str | None = None,
              details: dict[str, Any] | None = None) -> None:
        """Append an entry to the audit log, stamped now."""

    # -- maintenance ---------------------------------------------------------------------------
    def backup_to(self, dest: str) -> None:
        """Write a consistent copy to ``dest`` with a new cursor epoch and a gap in the versions."""

    def known_base(self, base: int) -> int:
        """A mutation's base as this database's history knows it (a restored copy's head for a lost version)."""

    def purge(self, before: str) -> dict[str, int]:
        """Forget tombstones, scope exits and mutation results older than ``before``; returns how many of each."""

    # -- read models and queries for the console, metrics, CLI ---------------------------------
    def live_count(self, coll: str, column: str | None = None, value: str | None = None) -> int:
        """The number of live records of the collection (whose indexed field ``column`` equals ``value``, if given)."""

    def record_count(self, coll: str) -> int:
        """The number of records of the collection, tombstones included."""

    def record_versions(self, coll: str) -> dict[str, int]:
        """Every record's version by id, tombstones included."""

    def live_records(self, coll: str) -> list[IdData]:
        """(id, data) pairs of every live record of the collection, in no particular order."""

    def live_ids_where(self, coll: str, column: str, value: str) -> list[str]:
        """Ids of the live records whose indexed field ``column`` equals ``value``."""

    def live_where_in(self, coll: str, column: str, values: Sequence[str]) -> list[IdData]:
        """(id, data) pairs of the live records whose indexed field ``column`` is one of ``values``."""

    def residents_with_id_numbers(self, numbers: Sequence[str]) -> list[IdData]:
        """(id, data) pairs of the live residents whose ID number is one of ``numbers`` (as stored:
        upper-case X), wherever they live (the roster import's duplicates, issue 14)."""

    def live_users(self) -> list[IdData]:
        """(id, data) pairs of the live users, by username."""

    def all_user_names(self) -> dict[str, tuple[str | None, str | None]]:
        """(display_name, username) of every user by id, deleted users included."""

    def live_area_names(self) -> dict[str, str | None]:
        """The name of every live area, by id."""

    def area_labels(self, ids: Iterable[str]) -> dict[str, tuple[str | None, Any]]:
        """(name, sort position) of the areas of these ids, by id."""

    def active_devices_of(self, user_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The unrevoked devices of these users, never seen first, then least recently seen.

        Each: id, user_id, name, last_seen_at, outbox_depth, app_version.
        """

    def conflict_ids_about(self, record_ids: Sequence[str], open_only: bool = False) -> list[str]:
        """Ids of the live conflicts about these records (only the open ones if ``open_only``)."""

    def matters_page(self, grid_ids: Iterable[str], keys: Iterable[str], flt: MatterFilter, sort: MatterSort,
                     limit: int | None, offset: int = 0) -> tuple[list[MatterRow], int]:
        """A page of matters (``limit`` None: all from ``offset``) and how many there are in all.

        The live matters of live households in these grids, visible under ``keys``, that pass ``flt``,
        in ``sort`` order.
        """

    def matters_iter(self, grid_ids: Iterable[str], keys: Iterable[str], flt: MatterFilter, sort: MatterSort,
                     batch: int = 500) -> Iterator[list[MatterRow]]:
        """The same matters as ``matters_page``, in the same order, as lists of at most ``batch`` rows
        read from one query as they are asked for (one read snapshot): an export of any size holds
        one batch in memory."""

    def possible_duplicates(self, matter_id: str, household_id: str | None, resident_id: str, raised_from: str,
                            raised_to: str, keys: Iterable[str]) -> list[IdData]:
        """(id, data) of the matters that may duplicate ``matter_id``.

        The live matters visible under ``keys``, other than ``matter_id``, of the household or of the
        resident, raised (the date as written, its first ten characters) from ``raised_from`` to
        ``raised_to`` inclusive, whose status is set and neither merged_duplicate nor not_accepted.
        """

    def household_search(self, grid_ids: Iterable[str], text: str, tag: str, limit: int,
                         offset: int = 0) -> tuple[list[IdData], int]:
        """Up to ``limit`` (id, data) of the matching households from ``offset``, by address then id; and
        how many match.

        The live households in these grids whose head's name, address or phone, or a live resident's
        name or phone, contains ``text`` (ASCII letters without case), and whose tags hold ``tag``
        (each condition only when not empty).
        """

    def residents_of(self, household_id: str) -> list[IdData]:
        """(id, data) of the household's live residents, oldest record first."""

    def visits_of(self, household_id: str, limit: int) -> list[IdData]:
        """(id, data) of the household's live visits, the latest ``visited_at`` first, at most ``limit``."""

    def household_matters(self, household_id: str, keys: Iterable[str]) -> list[IdData]:
        """(id, data) of the household's live matters visible under ``keys``."""

    def dashboard_matters(self, grid_ids: Iterable[str], start: str, end: str,
                          keys: Iterable[str] | None) -> list[DashboardMatter]:
        """The matters the dashboard counts for a period.

        The live matters of live households in these grids raised on a local date in [start, end),
        except merged duplicates, visible under ``keys`` (None: all).
        """

    def matters_with_event(self, matter_ids: Iterable[str], kind: str) -> set[str]:
        """Those of these matters that have a live matter event of this ``kind``."""

    def matters_now(self, grid_ids: Iterable[str], today: str, ended: Sequence[str],
                    keys: Iterable[str] | None) -> tuple[int, int]:
        """(overdue, supervised): how many open matters are overdue, and how many under supervision.

        Over the live matters of live households in these grids, visible under ``keys`` (None: all),
        whose status is set and not one of ``ended``: overdue = ``workflow.is_overdue`` on ``today`` (the
        same rule as ``MatterFilter.overdue_on``: the card counts what the list it opens shows);
        supervised = ``supervised`` true.
        """

    def feedback_of(self, matter_ids: Iterable[str]) -> list[Feedback]:
        """The live feedback events of these matters, in no particular order."""

    def visited_households(self, start: str, end: str, recent_from: str) -> dict[str, bool]:
        """Per household visited in [start, end): whether its latest visit then is at or after ``recent_from``.

        Live visits only; ``visited_at``, ``start``, ``end`` and ``recent_from`` are compared as
        instants, whatever their offsets.
        """

    def households_tagged(self, grid_ids: Iterable[str], tags: Sequence[str]) -> list[TaggedHousehold]:
        """The live households in these grids, each with whether its tags hold each of ``tags``."""

    def resolved_per_day(self, grid_ids: Iterable[str], start: str, end: str,
                         keys: Iterable[str] | None) -> list[tuple[str, int]]:
        """(local date, count): matters resolved per day of [start, end).

        The live matters of live households in these grids, now resolved or closed, visible under
        ``keys`` (None: all), by the local date of resolved_at (else closed_at).
        """

    def visit_counts(self, grid_ids: Iterable[str], start: str, end: str) -> tuple[int, int]:
        """(visits, households visited): the live visits to households of these grids on a local date in [start, end)."""

    # -- the dashboard's charts, map and coverage list (issue 14) -----------------------------------
    def matter_breakdown(self, grid_ids: Iterable[str], start: str, end: str, keys: Iterable[str] | None
                         ) -> list[tuple[str, str | None, str | None, int, int]]:
        """(grid, category, line, collected, resolved) of the matters ``dashboard_matters`` counts
        (raised in [start, end), merged duplicates excepted, visible under ``keys``), resolved being
        those now resolved or closed; one row per grid, category and line that has any."""

    def raised_per_day(self, grid_ids: Iterable[str], start: str, end: str,
                       keys: Iterable[str] | None) -> list[tuple[str, int]]:
        """(local date, count): matters raised per day of [start, end), merged duplicates excepted,
        of live households in these grids, visible under ``keys`` (None: all)."""

    def household_cells(self, grid_ids: Iterable[str]
                        ) -> list[tuple[str, int, int, float, float, float, float, float, float]]:
        """Per grid with a located live household: (grid, live households, those with a location, min
        lat, max lat, min lng, max lng, mean lat, mean lng), the coordinates over the located ones."""

    def household_points(self, grid_ids: Iterable[str]) -> list[tuple[str, str, float, float, str | None]]:
        """(id, grid, lat, lng, head's name) of the live households in these grids with a location."""

    def open_matter_points(self, grid_ids: Iterable[str], keys: Iterable[str], ended: Sequence[str],
                           ) -> list[tuple[str, str, str, float | None, float | None, IdData]]:
        """(matter, household, grid, lat, lng, (id, data)) of the live matters of live households in
        these grids, visible under ``keys``, whose status is none of ``ended``; lat and lng are their
        household's location (None when it has none)."""

    def visit_points(self, grid_ids: Iterable[str], since: str, until: str
                     ) -> list[tuple[str, str, str, float | None, float | None]]:
        """(visit, household, grid, lat, lng) of the live visits to live households of these grids with
        ``visited_at`` in [since, until) (instants, whatever their offsets); lat and lng from its gps."""

    def open_matter_cells(self, grid_ids: Iterable[str], keys: Iterable[str], ended: Sequence[str]
                          ) -> list[tuple[str, int]]:
        """Per grid, how many of the matters ``open_matter_points`` lists (any location)."""

    def visited_cells(self, grid_ids: Iterable[str], since: str, until: str) -> list[tuple[str, int]]:
        """Per grid, how many of the households ``households_visited`` lists (any tag, any location)."""

    def households_visited(self, grid_ids: Iterable[str], tag: str, since: str, until: str, limit: int,
                           offset: int = 0) -> tuple[list[IdData], int]:
        """As ``household_search`` without text: up to ``limit`` (after ``offset``) live households of these grids (whose
        tags hold ``tag``, when given) with a live visit in [since, until) (instants), by address then
        id; and how many there are (the dashboard's 走访覆盖, ``server.metrics``)."""

    def audit_entries(self, *, action: str = "", action_prefix: str = "", user_id: str = "",
                      user_ids: Sequence[str] | None = None, record_id: str = "", limit: int = 300,
                      at_from: str = "", at_before: str = "", offset: int = 0) -> list[AuditEntry]:
        """The newest ``limit`` audit entries that pass the filters, newest first, skipping ``offset``.

        Each filter only when given: the action is ``action``; it starts with ``action_prefix``
        (ASCII letters without case, '_' standing for any one character, '%' ignored); the entry is
        by ``user_id``, by one of ``user_ids``, about ``record_id``; stamped at ``at_from`` or later,
        before ``at_before`` (times as the store writes them, ``sync.store.iso``: UTC).
        """

    def audit_actions(self) -> list[str]:
        """The distinct actions in the audit log, sorted."""

    # -- login limiter (issue 13, item 3) ---------------------------------------------------------
    # Times are integer milliseconds since the Unix epoch. The limiter's rules are in
    # ``server/ratelimit.py``; the store only keeps its counters, shared by every process.
    def login_failures(self, username: str, address: str, since_ms: int) -> tuple[int, int]:
        """(failures, time of the last one) of the username from the address; (0, 0) when there are
        none or the last one is before ``since_ms``."""

    def login_address_failures(self, address: str, since_ms: int) -> list[int]:
        """The times of the address's remembered failures (at most the ``slots`` of ``login_failed``)
        after ``since_ms``, oldest first."""

    def login_failed(self, username: str, address: str, at_ms: int, since_ms: int, slots: int) -> None:
        """Count a failure at ``at_ms`` of the username from the address (starting again from 1 when
        the last one is before ``since_ms``), and remember it for the address, which keeps its
        ``slots`` most recent failures (the oldest makes way). Inside ``transaction()``."""

    def login_forget(self, username: str, address: str) -> None:
        """Forget the failures of the username from the address (not the address's own). Inside ``transaction()``."""

    def login_expire(self, before_ms: int, keep: int) -> int:
        """Forget failures older than ``before_ms``, then all but the ``keep`` most recent of each
        kind (pairs, address failures); returns how many rows went. Inside ``transaction()``."""


if TYPE_CHECKING:
    def _sqlite_store_is_a_store(store: SQLiteStore) -> Store:
        # mypy --strict (tests/test_typing.py) fails here if SQLiteStore misses or mistypes a method.
        return store
