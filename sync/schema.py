"""The data model: every synced collection, its fields, their types and who may write them.

This table is the single source of truth for validation (``validate_fields``), for the
merge rules (which fields are set-valued, which collections are append-only), for blob
references and for the field reference in ``docs/protocol.md`` (a test checks the docs
against it).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from .errors import MutationRejected

ROLES = ("grid_worker", "proxy_agent", "staff", "admin")
AREA_LEVELS = ("province", "city", "county", "district", "town", "street", "village", "community",
               "patch", "grid", "group")
MATTER_STATUSES = ("submitted", "accepted", "not_accepted", "merged_duplicate", "assigned", "in_progress",
                   "waiting_materials", "escalated", "resolved", "closed", "reopened")
LEVELS = ("village", "town", "county")
CHANNELS = ("visit", "proxy", "hotline_81890", "village_hotline", "online", "window", "walk_in",
            "meeting", "snapshot", "other")
# 归口 lines of the social service management centre (DOMAIN.md §4.6), plus the proxy-service ones.
LINES = ("zongzhi", "sifa", "jisheng", "dangjian", "chengguan", "xinfang", "tiaojie", "anquan_shengchan",
         "liudong_renkou", "minzheng", "shebao", "weijian", "jianshe", "other")
URGENCIES = ("normal", "urgent", "critical")
EVENT_KINDS = ("status", "note", "step", "feedback", "supervise", "escalate", "assign", "custody", "delegation")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A mobile or landline number as people write it: digits, spaces, dashes, plus and parentheses.
PHONE_RE = re.compile(r"^[0-9+()\- ]{3,30}$")
# 18-digit resident ID (last may be X) or the old 15-digit form.
ID_NUMBER_RE = re.compile(r"^(\d{17}[\dXx]|\d{15})$")
CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

MAX_SET_ITEMS = 50


@dataclass(frozen=True)
class Field:
    """One field of a collection.

    ``type`` is one of: str, text, int, float, bool, date, datetime, uuid, enum, set, strlist,
    sha256, sha256list, object, json.
    """

    name: str
    type: str
    required: bool = False          # must be present (and not null) on create
    nullable: bool = True
    computed: bool = False          # server-owned: ignored when a client sends it
    max_len: int = 200
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_items: int = 20
    subfields: tuple["Field", ...] = ()
    writers: tuple[str, ...] | None = None   # roles allowed to set it; None = whoever may write the record
    create_only: bool = False       # may be set on create, never changed afterwards
    masked_for: tuple[str, ...] = ()  # roles that receive it masked
    help: str = ""
    help_zh: str = ""

    @property
    def set_valued(self) -> bool:
        return self.type == "set"

    @property
    def blob_ref(self) -> bool:
        return self.type in ("sha256", "sha256list")


@dataclass(frozen=True)
class Collection:
    name: str
    fields: tuple[Field, ...]
    append_only: bool = False
    help: str = ""
    help_zh: str = ""
    by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.by_name.update({f.name: f for f in self.fields})

    def writable(self) -> list[Field]:
        return [f for f in self.fields if not f.computed]


SERVER_FIELDS = ("id", "version", "created_at", "updated_at", "created_by", "updated_by", "deleted")

_GPS = (
    Field("lat", "float", min=-90, max=90, help="latitude, WGS-84 degrees", help_zh="纬度"),
    Field("lng", "float", min=-180, max=180, help="longitude, WGS-84 degrees", help_zh="经度"),
    Field("accuracy", "float", min=0, max=100000, help="metres", help_zh="定位精度"),
)
CHECKLIST_ITEMS = ("left_phone", "left_help_intention", "left_commitment",
                   "took_situation", "took_difficulties", "took_suggestions")
_CHECKLIST_ZH = {"left_phone": "留下联系电话", "left_help_intention": "留下帮扶意向", "left_commitment": "留下责任担当",
                 "took_situation": "带走情况", "took_difficulties": "带走困难", "took_suggestions": "带走建议"}
_CHECKLIST = tuple(Field(n, "bool", help_zh=_CHECKLIST_ZH[n]) for n in CHECKLIST_ITEMS)

STAFF = ("staff", "admin")

COLLECTIONS: dict[str, Collection] = {c.name: c for c in (
    Collection("areas", (
        Field("parent_id", "uuid", create_only=True, help="the area above; null for a root (fixed once created)",
              help_zh="上级区域"),
        Field("level", "enum", required=True, nullable=False, create_only=True, choices=AREA_LEVELS, help="kind of area",
              help_zh="层级"),
        Field("name", "str", required=True, nullable=False, max_len=100, help="name as people say it",
              help_zh="名称"),
        Field("code", "str", max_len=40, help="administrative code", help_zh="行政区划代码"),
        Field("mountain", "bool", help="a mountain (高山) area: its households count for 不下山",
              help_zh="高山区域"),
        Field("sort", "int", min=0, max=1_000_000, help="display order among siblings", help_zh="排序"),
        Field("official_name", "str", max_len=100,
              help="the official name of the national code list (杜岙村村委会 for 杜岙村)", help_zh="规范名称"),
    ), help="The area tree: county → town → village → grid, with optional levels such as 片.",
        help_zh="区域树"),
    Collection("users", (
        Field("username", "str", computed=True, max_len=50, help_zh="用户名"),
        Field("display_name", "str", computed=True, max_len=50, help_zh="姓名"),
        Field("role", "enum", computed=True, choices=ROLES, help_zh="角色"),
        Field("areas", "json", computed=True, help="area ids the user works in", help_zh="工作区域"),
        Field("phone", "str", computed=True, max_len=30, help_zh="电话"),
        Field("active", "bool", computed=True, help_zh="启用"),
    ), help="People a user can hand matters to (read-only over sync; managed by admins).",
        help_zh="用户"),
    Collection("categories", (
        Field("code", "str", required=True, nullable=False, max_len=60, create_only=True,
              help="stable code, e.g. proxy.social_insurance_registration; unique", help_zh="分类代码"),
        Field("parent_code", "str", max_len=60, help="the first-level code; null for a first-level entry",
              help_zh="上级分类"),
        Field("name_zh", "str", required=True, nullable=False, max_len=60, help_zh="中文名称"),
        Field("name_en", "str", required=True, nullable=False, max_len=80, help_zh="英文名称"),
        Field("line", "enum", choices=LINES, help="default 归口 line", help_zh="默认归口"),
        Field("sensitive", "bool", help="restricted visibility and audited reads (信访)", help_zh="敏感事项"),
        Field("lowest_level", "enum", choices=LEVELS, help="lowest level that can handle it",
              help_zh="最低办理层级"),
        Field("deadline_days", "int", min=0, max=365, help="default deadline in working days", help_zh="默认时限"),
        Field("materials", "json", help="required materials checklist: [{code, name_zh, name_en}]",
              help_zh="材料清单"),
        Field("sort", "int", min=0, max=1_000_000, help_zh="排序"),
        Field("active", "bool", help_zh="启用"),
    ), help="The shipped two-level matter catalogue (DOMAIN.md §4.9), editable by admins.",
        help_zh="事项分类目录"),
    Collection("households", (
        Field("grid_id", "uuid", required=True, nullable=False, help="the grid (or patch) the household belongs to",
              help_zh="所属网格"),
        Field("address", "str", required=True, nullable=False, max_len=200, help_zh="地址"),
        Field("head_name", "str", required=True, nullable=False, max_len=50, help_zh="户主"),
        Field("members_count", "int", min=0, max=99, help_zh="人口数"),
        Field("phone", "str", max_len=30, help_zh="联系电话"),
        Field("tags", "set", max_len=20, help="独居老人, 低保户, 残疾人, 留守儿童, 党员中心户, 山区农户 …",
              help_zh="标签"),
        Field("notes", "text", max_len=4000, help_zh="备注"),
        Field("location", "object", subfields=_GPS, help="where the house is", help_zh="位置"),
    ), help="The household information card (住户信息卡).", help_zh="住户信息卡"),
    Collection("residents", (
        Field("household_id", "uuid", required=True, nullable=False, help_zh="所属住户"),
        Field("name", "str", required=True, nullable=False, max_len=50, help_zh="姓名"),
        Field("gender", "enum", choices=("male", "female", "unknown"), help_zh="性别"),
        Field("birth_year", "int", min=1880, max=2100, help_zh="出生年份"),
        # Proxy agents receive it masked too (issue 12, finding 10): at the window the agent carries the
        # resident's ID card itself (custody of the original, or a copy), so the phone never needs the number.
        Field("id_number", "str", max_len=18, masked_for=("grid_worker", "proxy_agent"),
              help="resident ID number; stored in full, returned masked to grid workers and proxy agents",
              help_zh="身份证号"),
        Field("phone", "str", max_len=30, help_zh="电话"),
        Field("relation", "str", max_len=20, help="relation to the head of household", help_zh="与户主关系"),
        Field("residence", "enum", choices=("resident", "away", "moved_out", "deceased"),
              help="lives here / away for work / moved out / deceased", help_zh="居住状态"),
        Field("tags", "set", max_len=20, help_zh="标签"),
        Field("notes", "text", max_len=4000, help_zh="备注"),
    ), help="People of a household.", help_zh="居民"),
    Collection("visits", (
        Field("household_id", "uuid", required=True, nullable=False, help_zh="走访住户"),
        Field("worker_id", "uuid", computed=True, help="who visited (the author)", help_zh="走访人"),
        Field("visited_at", "datetime", required=True, nullable=False, help_zh="走访时间"),
        Field("gps", "object", subfields=_GPS, help="where the visit was recorded, if the worker allowed it",
              help_zh="定位"),
        Field("narrative", "text", max_len=8000, help="the 民情日记 entry", help_zh="走访情况"),
        Field("checklist", "object", subfields=_CHECKLIST, help="三带走三留下", help_zh="三带走三留下"),
        Field("needs", "strlist", max_len=500, max_items=20, help="needs raised", help_zh="群众需求"),
        Field("photos", "sha256list", max_items=20, help="photo blobs", help_zh="照片"),
    ), append_only=True, help="A visit to a household (走访); append-only.", help_zh="走访记录"),
    Collection("matters", (
        Field("household_id", "uuid", required=True, nullable=False, create_only=True, help_zh="住户"),
        Field("resident_id", "uuid", help="the resident concerned, if one; a resident of the matter's household",
              help_zh="当事人"),
        Field("category", "str", max_len=60, help="catalogue code; null = uncategorised, for staff to triage",
              help_zh="分类"),
        Field("line", "enum", choices=LINES, writers=STAFF, help="归口 line", help_zh="归口"),
        Field("title", "str", required=True, nullable=False, max_len=200, help_zh="标题"),
        Field("description", "text", max_len=8000, help_zh="描述"),
        Field("channel", "enum", choices=CHANNELS, help_zh="来源渠道"),
        Field("level", "enum", choices=LEVELS, writers=STAFF, help="handling level", help_zh="办理层级"),
        Field("handling_mode", "enum", choices=("direct", "proxy"), help="direct, or by a proxy agent (代办)",
              help_zh="办理方式"),
        Field("assignee_id", "uuid", help="who handles it (派单); a proxy agent for proxy matters",
              help_zh="承办人"),
        Field("deadline", "date", writers=STAFF, help="时效", help_zh="办理时限"),
        Field("urgency", "enum", choices=URGENCIES, help_zh="紧急程度"),
        Field("status", "enum", computed=True, choices=MATTER_STATUSES,
              help="read-only: changed only by matter events of kind status", help_zh="状态"),
        Field("supervised", "bool", writers=STAFF, help="under supervision (督办)", help_zh="督办"),
        Field("supervision_note", "text", max_len=2000, writers=STAFF, help_zh="督办意见"),
        Field("duplicate_of", "uuid", writers=STAFF, help="the matter this one duplicates", help_zh="重复于"),
        Field("visit_id", "uuid", create_only=True, help="the visit during which it was raised", help_zh="走访记录"),
        Field("raised_at", "datetime", create_only=True,
              help="when the resident raised it; the create mutation's at when not given", help_zh="反映时间"),
        Field("photos", "sha256list", max_items=20, help_zh="照片"),
        Field("resolved_at", "datetime", computed=True, help="when it last reached resolved", help_zh="办结时间"),
        Field("closed_at", "datetime", computed=True, help="when it last reached closed", help_zh="销号时间"),
        Field("sensitive", "bool", computed=True,
              help="its category is sensitive (信访): seen by the handling chain only, every read audited",
              help_zh="敏感事项"),
        Field("paused_since", "datetime", computed=True,
              help="when it started waiting for materials (the deadline clock is stopped); null otherwise",
              help_zh="暂停计时起"),
        Field("paused_workdays", "int", computed=True,
              help="working days spent waiting for materials so far (closed pauses)", help_zh="暂停工作日"),
        Field("effective_deadline", "date", computed=True,
              help="deadline moved on by paused_workdays working days: what overdue and on-time use",
              help_zh="顺延后时限"),
        Field("number", "str", computed=True, max_len=20,
              help="work-order number (工单编号) YYYY-NNNNNN: the server's, once, at creation; unique",
              help_zh="工单编号"),
    ), help="A matter (诉求/事项): a resident's request or problem, tracked to closure.", help_zh="诉求事项"),
    Collection("matter_events", (
        Field("matter_id", "uuid", required=True, nullable=False, help_zh="事项"),
        Field("kind", "enum", required=True, nullable=False, choices=EVENT_KINDS, help_zh="类型"),
        Field("from", "enum", choices=MATTER_STATUSES, help="for kind status: the status the author saw",
              help_zh="原状态"),
        Field("to", "enum", choices=MATTER_STATUSES, help="for kind status: the new status", help_zh="新状态"),
        Field("note", "text", max_len=4000, help_zh="说明"),
        Field("step", "str", max_len=60, help="for kind step: which step of the agent's work", help_zh="代办步骤"),
        Field("for_resident_id", "uuid", help="on whose behalf (for whom)", help_zh="代谁办理"),
        Field("for_user_id", "uuid", help="the user the event concerns (e.g. the new assignee)",
              help_zh="相关人员"),
        Field("data", "json", help="kind-specific details", help_zh="详情"),
        Field("attachments", "sha256list", max_items=20, help="documents, photos, signatures", help_zh="附件"),
        Field("actor_id", "uuid", computed=True, help="who made the event (the author)", help_zh="操作人"),
        Field("at", "datetime", computed=True, help="when (the mutation's at, clamped)", help_zh="时间"),
        Field("applied", "bool", computed=True, help="for kind status: whether the transition took effect",
              help_zh="是否生效"),
    ), append_only=True, help="What happened to a matter, who did it, for whom (append-only).",
        help_zh="事项过程"),
    Collection("attachments", (
        Field("record_collection", "enum", required=True, nullable=False,
              choices=("households", "residents", "visits", "matters", "matter_events"), help_zh="所属记录类型"),
        Field("record_id", "uuid", required=True, nullable=False, help_zh="所属记录"),
        Field("sha256", "sha256", required=True, nullable=False, help_zh="文件哈希"),
        Field("kind", "enum", choices=("photo", "signature", "document", "other"), help_zh="附件类型"),
        Field("mime", "str", max_len=100, help_zh="文件格式"),
        Field("size", "int", min=0, max=100 * 1024 * 1024, help_zh="文件大小"),
        Field("caption", "str", max_len=200, help_zh="说明"),
    ), append_only=True, help="Metadata of a blob attached to a record (append-only).", help_zh="附件"),
    Collection("conflicts", (
        Field("kind", "enum", computed=True,
              choices=("field", "delete", "update_deleted", "transition", "delegation", "rejected"), help_zh="冲突类型"),
        Field("collection", "str", computed=True, help_zh="记录类型"),
        Field("record_id", "str", computed=True, help_zh="记录"),
        Field("mutation", "json", computed=True, help="the incoming mutation as pushed", help_zh="提交的修改"),
        Field("fields", "json", computed=True,
              help="per field: incoming and current values, their at and author, and which one won",
              help_zh="冲突字段"),
        Field("error", "json", computed=True, help="for kind rejected: {code, message}", help_zh="拒绝原因"),
        Field("author_id", "uuid", computed=True, help="who pushed the mutation", help_zh="提交人"),
        Field("device_id", "uuid", computed=True, help_zh="提交设备"),
        Field("involved", "json", computed=True, help="user ids whose edits are involved", help_zh="相关人员"),
        Field("area_id", "uuid", computed=True, help="the area of the record concerned", help_zh="所属区域"),
        Field("status", "enum", computed=True, choices=("open", "resolved"), help_zh="处理状态"),
        Field("resolution", "enum", choices=("current", "incoming", "value"),
              help="set by the resolving mutation", help_zh="处理结果"),
        Field("value", "json", help="with resolution value: the value to keep", help_zh="采用的值"),
        Field("resolved_by", "uuid", computed=True, help_zh="处理人"),
        Field("resolved_at", "datetime", computed=True, help_zh="处理时间"),
    ), help="Conflicts and rejected mutations, resolvable offline.", help_zh="冲突"),
)}

# Collections a client may write through push at all (users are managed by admins, not synced in).
PUSHABLE = frozenset({"areas", "categories", "households", "residents", "visits", "matters",
                      "matter_events", "attachments", "conflicts"})


# A UUID in its canonical form (either case) of the RFC 4122 variant: what uuid.UUID would accept
# and print back the same, checked without building the object (called several times per mutation).
UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}\Z")
SURROGATE_RE = re.compile("[\ud800-\udfff]")


def is_uuid(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 36 and UUID_RE.match(value) is not None


def parse_at(value: Any) -> datetime:
    """Parse an ISO 8601 time that carries an offset or Z; raise ValueError otherwise."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("no offset")
    try:
        # Year 1 at +23:59 or year 9999 at -23:59 is a valid string but no UTC time: refuse it
        # here, not with an OverflowError when the server stores it.
        dt.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("out of range") from None
    return dt


def _bad(path: str, why: str) -> MutationRejected:
    return MutationRejected("invalid_request", f"{path}: {why}")


def _check_text(path: str, f: Field, value: Any, multiline: bool) -> str:
    if not isinstance(value, str):
        raise _bad(path, "must be a string")
    if len(value) > f.max_len:
        raise _bad(path, f"is longer than {f.max_len} characters")
    bad = CONTROL_RE.search(value)
    if bad or (not multiline and ("\n" in value or "\r" in value)):
        raise _bad(path, "contains control characters")
    if SURROGATE_RE.search(value):
        raise _bad(path, "contains invalid characters")
    return value


def _check_number(path: str, f: Field, value: Any, integer: bool) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(path, "must be a number")
    if integer and not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _bad(path, "must be a whole number")
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        raise _bad(path, "must be a finite number")
    if f.min is not None and value < f.min:
        raise _bad(path, f"must be at least {f.min:g}")
    if f.max is not None and value > f.max:
        raise _bad(path, f"must be at most {f.max:g}")
    return value


def _check_json(path: str, value: Any, depth: int = 0) -> Any:
    """Free-form JSON fields still get bounds: depth, size and clean strings."""
    if depth > 6:
        raise _bad(path, "is nested too deeply")
    if isinstance(value, str):
        if len(value) > 4000 or CONTROL_RE.search(value):
            raise _bad(path, "holds a string that is too long or has control characters")
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (value != value or abs(value) == float("inf")):
            raise _bad(path, "holds a number that is not finite")
        if isinstance(value, int) and abs(value) > 2 ** 53:
            raise _bad(path, "holds a number that is too large")
        return value
    if isinstance(value, list):
        if len(value) > 200:
            raise _bad(path, "holds a list that is too long")
        return [_check_json(path, v, depth + 1) for v in value]
    if isinstance(value, dict):
        if len(value) > 100:
            raise _bad(path, "holds an object with too many keys")
        for k in value:
            if len(k) > 100 or CONTROL_RE.search(k):
                raise _bad(path, "holds a key that is too long")
        return {k: _check_json(path, v, depth + 1) for k, v in value.items()}
    raise _bad(path, "is not JSON")


def check_value(path: str, f: Field, value: Any) -> Any:
    """Validate and normalise one plain value of field ``f`` (not a set delta). Returns the stored value."""
    if value is None:
        if not f.nullable:
            raise _bad(path, "may not be null")
        return None
    t = f.type
    if t == "str":
        value = _check_text(path, f, value, multiline=False).strip()
        if f.name == "phone" and value and not PHONE_RE.match(value):
            raise _bad(path, "is not a phone number")
        if f.name == "id_number" and value and not ID_NUMBER_RE.match(value):
            raise _bad(path, "is not a resident ID number (18 characters, or 15 digits)")
        if f.name == "id_number":
            value = value.upper()
        if f.required and not value:
            raise _bad(path, "may not be empty")
        return value
    if t == "text":
        return _check_text(path, f, value, multiline=True)
    if t == "int":
        return _check_number(path, f, value, integer=True)
    if t == "float":
        return float(_check_number(path, f, value, integer=False))
    if t == "bool":
        if not isinstance(value, bool):
            raise _bad(path, "must be true or false")
        return value
    if t == "enum":
        if value not in f.choices:
            raise _bad(path, f"must be one of {', '.join(f.choices)}")
        return value
    if t == "uuid":
        if not is_uuid(value):
            raise _bad(path, "must be a UUID")
        return value.lower()
    if t == "date":
        if not isinstance(value, str) or not DATE_RE.match(value):
            raise _bad(path, "must be a date YYYY-MM-DD")
        try:
            date.fromisoformat(value)
        except ValueError:
            raise _bad(path, "must be a real date") from None
        return value
    if t == "datetime":
        try:
            return parse_at(value).isoformat()
        except ValueError:
            raise _bad(path, "must be an ISO 8601 time with an offset") from None
    if t == "sha256":
        if not isinstance(value, str) or not SHA256_RE.match(value):
            raise _bad(path, "must be a SHA-256 in lowercase hex")
        return value
    if t in ("strlist", "sha256list"):
        if not isinstance(value, list):
            raise _bad(path, "must be a list")
        if len(value) > f.max_items:
            raise _bad(path, f"may hold at most {f.max_items} items")
        item = Field(f.name, "sha256" if t == "sha256list" else "text", max_len=f.max_len)
        return [check_value(f"{path}[{i}]", item, v) for i, v in enumerate(value)]
    if t == "set":
        if not isinstance(value, list):
            raise _bad(path, "must be a list")
        return sorted(set(_check_set_items(path, f, value)))
    if t == "object":
        if not isinstance(value, dict):
            raise _bad(path, "must be an object")
        subs = {s.name: s for s in f.subfields}
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k not in subs:
                raise _bad(f"{path}.{k}", "is not a known field")
            out[k] = check_value(f"{path}.{k}", subs[k], v)
        return out
    if t == "json":
        return _check_json(path, value)
    raise AssertionError(f"unknown field type {t}")


def _check_set_items(path: str, f: Field, items: list[Any]) -> list[str]:
    if len(items) > MAX_SET_ITEMS:
        raise _bad(path, f"may hold at most {MAX_SET_ITEMS} items")
    item = Field(f.name, "str", max_len=f.max_len)
    out = []
    for i, v in enumerate(items):
        s = check_value(f"{path}[{i}]", item, v)
        if not s:
            raise _bad(f"{path}[{i}]", "may not be empty")
        out.append(s)
    return out


def check_set_delta(path: str, f: Field, value: Any, create: bool) -> dict[str, list[str]]:
    """A set-valued field is sent as ``{"add": [...], "remove": [...]}``; on create a plain list is accepted."""
    if create and isinstance(value, list):
        return {"add": sorted(set(_check_set_items(path, f, value))), "remove": []}
    if not isinstance(value, dict) or not set(value) <= {"add", "remove"}:
        raise _bad(path, 'a set-valued field is sent as {"add": [...], "remove": [...]}')
    add = value.get("add", [])
    remove = value.get("remove", [])
    if not isinstance(add, list) or not isinstance(remove, list):
        raise _bad(path, "add and remove must be lists")
    return {"add": sorted(set(_check_set_items(path + ".add", f, add))),
            "remove": sorted(set(_check_set_items(path + ".remove", f, remove)))}


def validate_fields(coll: Collection, fields: Any, create: bool) -> dict[str, Any]:
    """Validate a mutation's ``fields`` against the collection.

    Server-owned fields are dropped silently (protocol §1); unknown fields are rejected.
    Set-valued fields come back as ``{"add", "remove"}`` deltas, everything else normalised.
    """
    if not isinstance(fields, dict):
        raise _bad("fields", "must be an object")
    out: dict[str, Any] = {}
    for name, value in fields.items():
        if name in SERVER_FIELDS:
            continue
        f = coll.by_name.get(name)
        if f is None:
            raise MutationRejected("invalid_request", f"fields.{name}: {coll.name} has no field {name!r}")
        if f.computed:
            continue
        if f.set_valued:
            out[name] = check_set_delta(f"fields.{name}", f, value, create)
        else:
            out[name] = check_value(f"fields.{name}", f, value)
    if create:
        for f in coll.fields:
            if f.required and out.get(f.name) is None:
                raise _bad(f"fields.{f.name}", "is required")
    return out


def blob_refs(coll: Collection, data: dict[str, Any]) -> set[str]:
    """The blob hashes a record refers to."""
    refs: set[str] = set()
    for f in coll.fields:
        v = data.get(f.name)
        if f.type == "sha256" and isinstance(v, str):
            refs.add(v)
        elif f.type == "sha256list" and isinstance(v, list):
            refs.update(x for x in v if isinstance(x, str))
    return refs


# The roles that receive resident ID numbers masked, in records and inside conflicts alike.
MASKED_ROLES = ("grid_worker", "proxy_agent")


def mask_id_number(value: str | None) -> str | None:
    """110105199001011234 -> 110105********1234: enough to tell people apart, not to impersonate."""
    if not value:
        return value
    if len(value) <= 8:
        return "*" * len(value)
    return value[:6] + "*" * (len(value) - 10) + value[-4:]

