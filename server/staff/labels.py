"""Names of the model's codes for the staff pages, Chinese and English (the PWA's wording)."""

from __future__ import annotations

from typing import Any

LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "status": {
        "submitted": ("待受理", "Awaiting intake"), "accepted": ("已受理", "Accepted"),
        "not_accepted": ("不予受理", "Not accepted"), "merged_duplicate": ("合并重复", "Duplicate"),
        "assigned": ("已派单", "Dispatched"), "in_progress": ("办理中", "In progress"),
        "waiting_materials": ("待补材料", "Awaiting documents"), "escalated": ("已上报", "Escalated"),
        "resolved": ("已办结", "Resolved"), "closed": ("已销号", "Closed"), "reopened": ("重新办理", "Reopened"),
    },
    "line": {
        "zongzhi": ("综治", "Comprehensive governance"), "sifa": ("司法", "Justice"),
        "jisheng": ("计生", "Family planning"), "dangjian": ("党建", "Party building"),
        "chengguan": ("城管", "Urban management"), "xinfang": ("信访", "Petitions"),
        "tiaojie": ("调解", "Mediation"), "anquan_shengchan": ("安全生产", "Work safety"),
        "liudong_renkou": ("流动人口服务", "Migrant services"), "minzheng": ("民政", "Civil affairs"),
        "shebao": ("社保", "Social insurance"), "weijian": ("卫健", "Health"),
        "jianshe": ("建设", "Construction"), "other": ("其他", "Other"),
    },
    "channel": {
        "visit": ("走访中反映", "Raised on a visit"), "proxy": ("代办员受理", "Via proxy agent"),
        "hotline_81890": ("81890热线", "81890 hotline"), "village_hotline": ("村级民情热线", "Village hotline"),
        "online": ("网上反映", "Online"), "window": ("窗口受理", "Service window"),
        "walk_in": ("群众上门反映", "Walk-in"), "meeting": ("会议收集", "Meeting"),
        "snapshot": ("随手拍", "Snap-and-report"), "other": ("其他", "Other"),
    },
    "level": {"village": ("村级", "Village"), "town": ("镇级", "Town"), "county": ("区县级", "County")},
    "urgency": {"normal": ("一般", "Normal"), "urgent": ("紧急", "Urgent"), "critical": ("特急", "Critical")},
    "handling": {"direct": ("直接办理", "Handled directly"), "proxy": ("代办", "Proxy")},
    "role": {"grid_worker": ("网格员", "Grid worker"), "proxy_agent": ("代办员", "Proxy agent"),
             "staff": ("镇工作人员", "Town staff"), "admin": ("管理员", "Administrator")},
    "kind": {
        "status": ("状态变更", "Status"), "note": ("备注", "Note"), "step": ("代办步骤", "Step"),
        "feedback": ("对象评价", "Feedback"), "supervise": ("督办", "Supervision"), "escalate": ("上报", "Escalation"),
        "assign": ("派单", "Dispatch"), "custody": ("材料交接", "Materials custody"),
        "delegation": ("委托授权", "Delegation"),
    },
    "conflict": {
        "field": ("同时修改", "Concurrent edits"), "delete": ("修改与删除", "Edit vs delete"),
        "update_deleted": ("修改已删除记录", "Edit of a deleted record"),
        "transition": ("状态冲突", "Contested status change"), "rejected": ("被拒绝的修改", "Rejected change"),
        "delegation": ("改派后收到的代办操作", "Agent's work after reassignment"),
    },
    "collection": {"households": ("住户", "Household"), "residents": ("家庭成员", "Resident"),
                   "visits": ("走访", "Visit"), "matters": ("事项", "Matter"),
                   "matter_events": ("事项过程", "Matter event"), "attachments": ("附件", "Attachment"),
                   "areas": ("区域", "Area"), "categories": ("事项分类", "Category"), "conflicts": ("冲突", "Conflict"),
                   "users": ("用户", "User"), "devices": ("设备", "Device")},
    "custody": {"received": ("从群众处收取", "Received from the resident"), "handed_to_window": ("交窗口", "Handed to the window"),
                "back_from_window": ("从窗口取回", "Back from the window"), "kept_by_window": ("窗口留存", "Kept by the window"),
                "returned": ("归还群众", "Returned to the resident")},
    "place": {"agent": ("在代办员处", "With the agent"), "window": ("在窗口", "At the window"),
              "kept": ("窗口留存", "Kept by the window"), "resident": ("已归还群众", "Returned")},
    "form": {"original": ("原件", "Original"), "copy": ("复印件", "Copy")},
    "step": {"accepted": ("接件办理", "Taken on"), "waiting_materials": ("材料不齐，待补", "Materials missing"),
             "materials_complete": ("材料已齐", "Materials complete"),
             "submitted_to_window": ("已递交窗口", "Submitted at the window"),
             "result_obtained": ("已取得办理结果", "Result obtained"), "delivered": ("已送达群众", "Delivered"),
             "escalated": ("上报镇/县", "Escalated")},
    "satisfaction": {"satisfied": ("满意", "Satisfied"), "basically_satisfied": ("基本满意", "Mostly satisfied"),
                     "dissatisfied": ("不满意", "Not satisfied")},
    "level_area": {"county": ("区县", "County"), "town": ("乡镇", "Town"), "village": ("村", "Village"),
                   "community": ("社区", "Community"), "grid": ("网格", "Grid"), "group": ("村民小组", "Group"),
                   "patch": ("片区", "Patch"), "district": ("区", "District"), "street": ("街道", "Street"),
                   "city": ("市", "City"), "province": ("省", "Province")},
    "audit": {  # actions of the audit log (docs/staff.md)
        "sensitive.read": ("查看敏感事项", "Sensitive matter read"),
        "id_number.read": ("查看完整身份证号", "Full ID number viewed"),
        "device.login": ("设备登录", "Device signed in"), "device.revoke": ("注销设备", "Device revoked"),
        "user.create": ("创建用户", "User created"), "user.update": ("修改用户", "User changed"),
        "user.password": ("设置密码", "Password set"), "staff.login": ("登录管理后台", "Console sign-in"),
        "staff.user.create": ("后台创建用户", "User created on the console"),
        "staff.area.create": ("新建区域", "Area created"), "staff.catalogue.update": ("修改事项目录", "Catalogue changed"),
        "staff.conflict.resolve": ("处理冲突", "Conflict resolved"), "staff.export": ("导出", "Export"),
        # the matter page's actions (server/staff/matters.py audits "staff." + the form's action)
        "staff.accept": ("受理事项", "Matter accepted"), "staff.triage": ("保存事项分类", "Matter classified"),
        "staff.not_accept": ("不予受理", "Matter not accepted"), "staff.merge": ("合并重复事项", "Duplicate merged"),
        "staff.dispatch": ("派单", "Matter dispatched"), "staff.reassign": ("改派", "Matter reassigned"),
        "staff.escalate": ("上报事项", "Matter escalated"), "staff.move": ("变更事项状态", "Matter status changed"),
        "staff.supervise": ("列入督办", "Matter supervised"), "staff.unsupervise": ("解除督办", "Supervision lifted"),
        "staff.note": ("添加备注", "Note added"),
        "staff.areas.import": ("导入区划", "Areas imported"), "staff.grids.import": ("导入网格", "Grids imported"),
        "import.households.check": ("预览住户花名册导入", "Household roster checked"),
        "import.households": ("导入住户花名册", "Household roster imported"),
    },
    # Protocol error codes (sync/errors.py) as staff read them; the engine's own message is English
    # and names fields, so the Chinese console shows this instead (errors.CODES has the same keys).
    "error": {
        "invalid_request": ("提交的内容不符合要求。", "The change is not valid."),
        "forbidden": ("无权进行此操作，或记录不在您的管辖范围内。", "You may not do this, or the record is outside your area."),
        "not_found": ("没有找到这条记录，或不在您的管辖范围内。", "No such record in your area."),
        "invalid_transition": ("事项当前的状态下不能进行这一步。", "This step is not possible from the matter's current status."),
        "id_collision": ("记录编号与已有记录重复。", "Another record already has this id."),
        "invalid_base": ("记录已被他人修改，请刷新后重试。", "The record changed meanwhile; reload and try again."),
        "already_resolved": ("这条冲突已经处理过了。", "This conflict was already resolved."),
        "no_delegation": ("代办员需先登记群众的委托授权，才能代为办理。",
                          "A proxy agent needs the resident's authorisation before acting."),
    },
    # Keys of a matter event's ``data`` that staff actions write (server/staff/matters.py).
    "event_data": {"line": ("归口部门", "Department"), "level": ("办理层级", "Level"),
                   "from_user_id": ("原承办人", "Previous assignee"), "supervised": ("督办", "Supervised")},
    "resolution": {"current": ("保留原有的值", "Kept the earlier value"), "incoming": ("采用提交的值", "Took the submitted value"),
                   "value": ("改为其他值", "Set another value")},
    "conflict_status": {"open": ("未处理", "Open"), "resolved": ("已处理", "Resolved")},
    "bool": {"True": ("是", "Yes"), "False": ("否", "No")},
    "rating": {"5": ("非常满意", "Very satisfied"), "4": ("满意", "Satisfied"), "3": ("基本满意", "Mostly satisfied"),
               "2": ("不满意", "Not satisfied"), "1": ("很不满意", "Very dissatisfied")},
}


def label(group: str, code: Any, lang: str = "zh") -> str:
    if code is None or code == "":
        return "—"
    pair = LABELS.get(group, {}).get(str(code))
    if pair is None:
        return str(code)
    return pair[1] if lang == "en" else pair[0]


def field_label(coll: str | None, name: str, lang: str = "zh") -> str:
    """A field's name as staff read it: its Chinese label in the schema (``help_zh``), or in English
    the name in words ("head_name" -> "Head name")."""
    from sync.schema import COLLECTIONS
    f = COLLECTIONS[coll].by_name.get(name) if coll in COLLECTIONS else None
    if f is None:   # a matter's status in a conflict about its event: the name means the same everywhere
        f = next((c.by_name[name] for c in COLLECTIONS.values() if name in c.by_name and c.by_name[name].help_zh),
                 None)
    if lang != "en" and f is not None and f.help_zh:
        return f.help_zh
    words = name.removesuffix("_id").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def error_text(code: str | None, lang: str = "zh") -> str:
    """An engine error (``sync.errors`` code) as staff read it: one sentence in their language."""
    if not code:
        return ""
    pair = LABELS["error"].get(code)
    return (pair[1] if lang == "en" else pair[0]) if pair else label("error", "invalid_request", lang)


# Fields whose value is a code of a label group of the same meaning.
_VALUE_GROUPS = {"status": "status", "line": "line", "channel": "channel", "level": "level", "urgency": "urgency",
                 "handling_mode": "handling", "role": "role", "satisfaction": "satisfaction", "kind": "kind"}


def value_text(coll: str | None, name: str, value: Any, lang: str = "zh",
               names: dict[str, str] | None = None) -> str:
    """A stored field value as staff read it: labels for codes, names for people and areas, 是/否."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, bool):
        return label("bool", str(value), lang)
    group = _VALUE_GROUPS.get(name)
    if coll == "areas" and name == "level":
        group = "level_area"
    if group and isinstance(value, str):
        return label(group, value, lang)
    if isinstance(value, str) and names is not None and (name.endswith("_id") or name in ("by", "duplicate_of")):
        return names.get(value, "—")   # an id nobody reads: the name, or nothing
    if isinstance(value, list):
        return (", " if lang == "en" else "、").join(value_text(coll, name, v, lang, names) for v in value)
    if isinstance(value, dict):
        colon, semi = (": ", "; ") if lang == "en" else ("：", "；")
        return semi.join(f"{field_label(coll, k, lang)}{colon}{value_text(coll, k, v, lang, names)}"
                         for k, v in value.items())
    return str(value)


class Labels:
    """``L.status("closed")`` in a template: the label in the page's language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getattr__(self, group: str) -> Any:
        if group not in LABELS:
            raise AttributeError(group)
        return lambda code: label(group, code, self.lang)

    def error(self, code: str | None) -> str:
        """An engine error code as a sentence (never the code itself, even one not labelled yet)."""
        return error_text(code, self.lang) if code else "—"

    def event_key(self, key: str) -> str:
        """A key of a matter event's ``data`` (``line``, ``from_user_id`` …) as a label."""
        pair = LABELS["event_data"].get(key)
        return (pair[1] if self.lang == "en" else pair[0]) if pair else field_label("matters", key, self.lang)

    def field(self, coll: str | None, name: str) -> str:
        return field_label(coll, name, self.lang)

    def value(self, coll: str | None, name: str, value: Any, names: dict[str, str] | None = None) -> str:
        return value_text(coll, name, value, self.lang, names)

    def choices(self, group: str) -> list[tuple[str, str]]:
        return [(code, label(group, code, self.lang)) for code in LABELS[group]]
