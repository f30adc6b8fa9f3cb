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
                   "users": ("用户", "User")},
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
        "import.households.check": ("预览住户花名册导入", "Household roster checked"),
        "import.households": ("导入住户花名册", "Household roster imported"),
    },
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


class Labels:
    """``L.status("closed")`` in a template: the label in the page's language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __getattr__(self, group: str) -> Any:
        if group not in LABELS:
            raise AttributeError(group)
        return lambda code: label(group, code, self.lang)

    def choices(self, group: str) -> list[tuple[str, str]]:
        return [(code, label(group, code, self.lang)) for code in LABELS[group]]
