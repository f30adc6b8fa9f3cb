"""The demo town: 海曙区 › 章水镇, four villages in the Siming mountains, two years of field work.

``seed(store)`` builds a realistic, deterministic town and writes every record through
``sync.engine.push`` as the user who would have made it, at the time they would have made it
(the mutation's ``at``): the grid workers register households in the baseline survey of
November 2024 (DOMAIN.md W1), visit them for two years (W2, W8: 民情日记 and 三带走三留下),
raise matters that town staff accept, dispatch, supervise and strike off (W5, W7), proxy agents
carry documents down the mountain (W9), and a few edits collide on the way (protocol §6).

Everything comes from ``random.Random(seed_value)`` and a fixed "today" (2026-11-20): the same
seed gives the same records, ids and versions; only server timestamps, device ids and the ids
of conflict records (made by the server) differ between runs.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import re
import struct
import zlib
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any, Sequence

from sync import accounts, engine
from sync.blobs import BlobBytes
from sync.catalogue import install_catalogue, load_catalogue
from sync.protocol import MutationIn, PushRequest, PushResult
from sync.scope import Actor
from sync.store import SQLiteStore, iso, utcnow

CST = timezone(timedelta(hours=8))
TODAY = date(2026, 11, 20)
END = datetime(2026, 11, 20, 17, 30, tzinfo=CST)          # nothing in the demo happens after this
SURVEY = (date(2024, 11, 4), date(2024, 11, 29))           # the baseline survey (入户调查)
PASSWORD = "demo"
BATCH = 500

# --------------------------------------------------------------------------------------------
# The place and the people who work in it


@dataclass(frozen=True)
class VillageSpec:
    key: str
    name: str
    code: str
    mountain: bool
    hamlets: tuple[str, ...]
    grids: int
    lat: float
    lng: float
    clan: tuple[str, float]          # the village's big surname and its share


VILLAGES = (
    VillageSpec("zhangxi", "杖锡村", "330203106260", True, ("杖锡", "上岙", "下岙", "大坪", "黄泥浆", "岭脚"), 3,
                29.7452, 121.1718, ("黄", 0.2)),
    VillageSpec("lijiakeng", "李家坑村", "330203106245", True, ("李家坑", "上坑", "溪口头", "里坑"), 2,
                29.7552, 121.2050, ("李", 0.45)),
    VillageSpec("miyan", "蜜岩村", "330203106213", True, ("蜜岩", "里蜜岩", "外蜜岩", "岩下", "岭头"), 2,
                29.7800, 121.2440, ("毛", 0.22)),
    VillageSpec("zhangcun", "樟村", "330203106206", False, ("樟村", "北溪", "新屋", "大路边", "后门山", "樟村新村"), 3,
                29.7872, 121.2860, ("陈", 0.15)),
)
CN_NUM = "一二三四五六七八九十"

# (village key, grid number) -> grid workers (username, display name); the first one is the grid's lead.
GRID_WORKERS: dict[tuple[str, int], tuple[tuple[str, str], ...]] = {
    ("zhangxi", 1): (("worker1", "李秀英"), ("worker2", "王建军")),
    ("zhangxi", 2): (("zhangli", "张丽"),),
    ("zhangxi", 3): (("huangwei", "黄伟"),),
    ("lijiakeng", 1): (("worker3", "李海波"),),
    ("lijiakeng", 2): (("lijianhua", "李建华"),),
    ("miyan", 1): (("maohuiping", "毛慧萍"),),
    ("miyan", 2): (("yingjun", "应军"),),
    ("zhangcun", 1): (("zhouqian", "周倩"),),
    ("zhangcun", 2): (("xuming", "徐明"),),
    ("zhangcun", 3): (("chenyan", "陈燕"),),
}
# 高山首席代办员: one per high-mountain village (樟村 sits in the valley beside the town centre).
AGENTS = {"zhangxi": ("agent1", "黄志明"), "lijiakeng": ("liguoqing", "李国庆"), "miyan": ("xuyanfang", "徐艳芳")}
STAFF1, HANDLER = ("staff1", "周海燕"), ("chenjing", "陈静")   # 镇综治中心 (intake) / 镇社会事务办 (handles)
ADMIN = ("admin", "系统管理员")

LINE_ZH = {"zongzhi": "综治", "sifa": "司法", "jisheng": "计生", "dangjian": "党建", "chengguan": "城管",
           "xinfang": "信访", "tiaojie": "调解", "anquan_shengchan": "安全生产", "liudong_renkou": "流动人口服务",
           "minzheng": "民政", "shebao": "社保", "weijian": "卫健", "jianshe": "建设", "other": "综合"}
LEVEL_ZH = {"village": "村", "town": "镇", "county": "区"}

# --------------------------------------------------------------------------------------------
# Names

SURNAMES = ("王", "陈", "张", "李", "周", "徐", "胡", "应", "林", "毛", "黄", "史", "俞", "邵", "杨", "邬", "蒋", "竺",
            "孙", "朱", "吴", "郑", "戴", "范")
GIVEN = {  # (born before, male names, female names)
    1950: ("阿根 根法 水根 德明 忠良 国良 善庆 永康 金海 阿土 福生 兴发 荣华 有福 志祥 增福 宝林 昌茂".split(),
           "秀英 桂英 彩娥 月娥 阿香 小娥 杏花 凤英 爱娣 招娣 菊英 翠娥 素娥 雪娟 阿菊 彩凤".split()),
    1970: ("建国 国平 伟国 志明 海良 建华 立新 卫东 国庆 建平 永明 利民 国章 明华 国祥 兴国".split(),
           "美娟 红英 亚萍 雅芬 丽华 秀芬 月芬 惠芬 彩芬 玉芳 亚娣 雪芬 飞燕 素芬".split()),
    1990: ("海军 伟 军 斌 波 海波 建军 晓东 立军 峰 杰 剑 海峰 永刚 国军".split(),
           "丽萍 海燕 燕 静 丹 萍 琳 慧 婷 霞 芳 敏 红霞 晓燕".split()),
    2005: ("浩 磊 超 鹏 俊杰 宇 帅 晨 凯 杰 炜 佳豪".split(),
           "佳佳 婷婷 倩 雪 璐 颖 洁 莹 梦婷 佳怡".split()),
    2100: ("子轩 浩然 宇航 梓豪 一鸣 睿 俊熙 皓轩 沐阳 锦程".split(),
           "欣怡 梓涵 一诺 诗涵 语桐 可馨 若曦 雨萱 思彤 芷若".split()),
}
MARRIED_IN = ("330281", "330283", "330226", "331023", "330624", "330282", "522426", "513029", "362329")
ILLNESS_DRUG = {"高血压": ("氨氯地平片", "硝苯地平缓释片"), "糖尿病": ("门冬胰岛素", "二甲双胍片"),
                "慢阻肺": ("沙美特罗替卡松吸入剂",), "冠心病": ("阿司匹林肠溶片", "单硝酸异山梨酯片"),
                "关节炎": ("塞来昔布胶囊", "氨基葡萄糖胶囊"), "白内障": ("吡诺克辛滴眼液",)}
ILLNESSES = tuple(ILLNESS_DRUG)
AWAY_PLACES = ("在宁波市区打工", "在鄞州一家厂里上班", "在杭州上班", "在上海做生意", "在宁波开出租车",
               "在余姚做装修", "在外地读大学")

# --------------------------------------------------------------------------------------------
# What people ask for: per category, the need as a worker jots it on a visit, matters (title,
# description, urgency) and how they end. Placeholders are filled from the household.

TEXTS: dict[str, dict[str, Any]] = {
    "proxy.medical_prescription": {
        "need": ["代配{drug}", "想请代办员帮忙配药", "希望巡回医疗队上门看看"],
        "items": [("代配{drug}", "{who}患{illness}多年，需长期服用{drug}。家住{hamlet}，下山到镇卫生院来回要大半天，"
                   "子女不在身边，请代办员帮忙到卫生院代配一个月的药。", "normal"),
                  ("代配门冬胰岛素", "{who}有糖尿病，一直打门冬胰岛素，村卫生室配不到，以前要下山到区里医院去配。"
                   "请代办员帮忙代配，并送药上门。", "urgent"),
                  ("预约高山巡回医疗队上门", "{who}最近{symptom}，行动不便下不了山，希望巡回医疗队下次上山时上门看看。", "normal")],
        "done": ["药已配好，代办员送药上门，{who}当面签收，社保卡和病历本一并送还。",
                 "已联系高山巡回医疗队，医生上门看过，开了药，嘱咐按时复查。"],
    },
    "proxy.social_insurance_registration": {
        "need": ["养老金资格认证不会弄", "医保费还没交", "领养老金的存折丢了"],
        "items": [("代办养老金领取资格认证", "{who}年纪大了，不会用手机做养老金领取资格认证，子女在外地，委托代办员上门帮忙认证。", "normal"),
                  ("代办城乡居民医保参保缴费", "{who}家明年的城乡居民医保还没交，老人不会网上缴费，请代办员帮忙代缴并把回执带回来。", "normal"),
                  ("代办养老金领取账户变更", "{who}原来领养老金的存折丢了，新办了银行卡，需要到社保窗口办理领取账户变更。", "normal"),
                  ("代办城乡居民养老保险参保登记", "{who}家{kin}从外地回乡，需要办理城乡居民养老保险参保登记，委托代办员代办。", "normal")],
        "done": ["已在章水镇便民服务中心社保窗口办结，回执已交给{who}。", "资格认证已完成，当月养老金正常发放。"],
    },
    "proxy.family_planning": {
        "need": ["问独生子女父母奖励怎么申请"],
        "items": [("代办独生子女父母奖励扶助申请", "{who}夫妇是独生子女家庭，今年{age}岁，符合农村部分计划生育家庭奖励扶助条件，委托代办员代为申请。", "normal"),
                  ("代办计生特殊家庭扶助金申领", "{who}家属于计生特殊家庭，扶助金申领材料需要每年核对，老人下山不便，委托代办。", "normal")],
        "done": ["申请材料已报镇计生办审核通过，扶助金按年发放到本人银行卡。"],
    },
    "proxy.civil_affairs_relief": {
        "need": ["想申请低保", "家里困难想申请救助", "问高龄津贴怎么领"],
        "items": [("代办低保申请", "{who}{hardship}，家庭收入低，申请最低生活保障，委托代办员代办申请手续。", "normal"),
                  ("代办临时救助申请", "{who}家{event}，医药费花了不少，生活困难，申请临时救助。", "urgent"),
                  ("代办残疾人两项补贴申请", "{who}家有残疾人，符合困难残疾人生活补贴和重度残疾人护理补贴条件，委托代办员代为申请。", "normal"),
                  ("代办高龄津贴申领", "{who}今年满80周岁，可以申领高龄津贴，老人不识字，请代办员帮忙办理。", "normal")],
        "done": ["经镇民政办审核、村里公示，已批准，补助按月发放到本人账户。", "临时救助金已批准发放，已告知{who}。"],
    },
    "proxy.petition": {
        "need": ["山林边界有矛盾想反映上去"],
        "items": [("反映承包山林被他人砍伐毛竹", "{who}反映自家承包的山林与邻村交界处被人砍伐毛竹，多次协商无果，要求有关部门处理。"
                   "委托代办员代为递交信访材料。", "normal"),
                  ("反映修路占地补偿款分配问题", "{who}反映{year}年村里修路占用自家土地，补偿款分配有异议，要求核查。", "normal")],
        "done": ["信访材料已递交镇信访办并受理，镇里组织林业站和村两委现场核实，已书面答复{who}。"],
    },
    "proxy.housing_build_approval": {
        "need": ["老房子裂了想翻建", "问建房审批怎么办"],
        "items": [("代办农房翻建审批手续", "{who}家老房子是上世纪七十年代的泥墙房，墙体已有裂缝，属于危房，申请原址翻建，"
                   "委托代办员代办宅基地和建房审批手续。", "normal"),
                  ("代办农村危房改造补助申请", "{who}家住房经鉴定为C级危房，家庭困难，申请农村危房改造补助，委托代办。", "urgent")],
        "done": ["审批材料已报镇里审批，已取得乡村建设规划许可证，证件已交给{who}。", "危房改造补助已批准，施工队已进场。"],
    },
    "proxy.utilities": {
        "need": ["电费想办代扣", "自来水要开户"],
        "items": [("代办电费银行代扣", "{who}不会用手机缴费，每次都要下山到营业厅，希望办理银行卡代扣电费。", "normal"),
                  ("代办集中供水开户", "{hamlet}通了集中供水，{who}家需要办理开户，委托代办员代办。", "normal")],
        "done": ["已在营业厅办好代扣手续，以后电费自动扣缴，已告知{who}。", "开户已办好，水表已登记。"],
    },
    "proxy.citizen_card": {
        "need": ["社保卡丢了要补办", "社保卡要换新卡"],
        "items": [("代办社保卡（市民卡）补办", "{who}的社保卡丢了，配药报销都要用，委托代办员代为挂失补办。", "normal"),
                  ("代办第三代社保卡换领", "{who}的社保卡需要换领第三代社保卡，老人下山不便，委托代办。", "normal")],
        "done": ["新卡已制好，代办员取回送到{who}手里，当场帮忙激活。"],
    },
    "proxy.other_proxy": {
        "need": ["想办敬老卡坐公交", "不动产证丢了"],
        "items": [("代办老年人乘车优惠卡", "{who}今年满70周岁，想办老年人乘车优惠卡，委托代办员代办。", "normal"),
                  ("代办不动产权证遗失补办", "{who}家不动产权证找不到了，委托代办员到区不动产登记中心咨询并办理补办。", "normal")],
        "done": ["已代办完成，证件已送还{who}本人。"],
    },
    "livelihood.farming_inputs": {
        "need": ["茶园有病虫害", "高山蔬菜卖不出价", "笋干没销路"],
        "items": [("茶园病虫害求助", "{who}家{n}亩茶园出现茶小绿叶蝉，叶子发黄卷边，希望请农技员上山看看怎么防治。", "normal"),
                  ("高山蔬菜销路问题", "{who}种的高山四季豆今年产量不错，但收购商压价厉害，希望村里帮忙联系销路。", "normal"),
                  ("笋干销售难", "{who}家今年晒了两百多斤笋干，往年来收的老板今年没来，希望帮忙找找销路。", "normal")],
        "done": ["已联系镇农办农技员上门指导，药已打过，情况好转。", "村里通过合作社统一收购，销路已解决。"],
    },
    "livelihood.hardship_aid": {
        "need": ["屋顶漏雨", "冬天被子不够", "家里困难"],
        "items": [("独居老人屋顶漏雨需修缮", "{who}家老屋屋顶瓦片破损，下雨漏水，老人独居无力修缮。", "urgent"),
                  ("困难家庭冬季帮扶", "{who}{hardship}，冬天取暖的被褥不够，希望给予帮扶。", "normal")],
        "done": ["村里组织党员志愿者上门翻修了屋顶，已不再漏雨。", "已送去棉被、取暖器和慰问金。"],
    },
    "livelihood.schooling": {
        "need": ["孩子上学接送困难"],
        "items": [("留守儿童上学接送困难", "{who}家{kid}在章水镇中心小学读书，家住{hamlet}，离公交站远，父母在外打工，老人接送困难。", "normal"),
                  ("孩子转学咨询", "{who}家{kid}要从外地转回章水读书，想问问需要哪些材料。", "normal")],
        "done": ["已与学校协调，安排孩子寄宿，周末由校车送回。", "已告知转学所需材料，学校已同意接收。"],
    },
    "livelihood.employment": {
        "need": ["想在附近找份工作"],
        "items": [("希望在家门口就业", "{who}今年{age}岁，在家照顾老人走不开，希望在附近找份工作，民宿或者茶厂都可以。", "normal")],
        "done": ["已推荐到附近民宿做保洁，已经上岗。", "已推荐到镇上一家茶厂做季节工。"],
    },
    "livelihood.skills_training": {
        "need": ["想参加民宿服务培训", "想学直播卖山货"],
        "items": [("希望参加民宿服务培训", "{who}家想把空房间改成民宿，希望参加镇里组织的民宿服务和烹饪培训。", "normal"),
                  ("想学电商直播卖笋干", "{who}家{kin}想学网上直播卖笋干和茶叶，问有没有培训。", "normal")],
        "done": ["已报名镇里的民宿服务培训班，已参加。", "已推荐参加区里的农村电商培训。"],
    },
    "livelihood.legal_help": {
        "need": ["赡养费的事想问问律师", "遗产的事想咨询"],
        "items": [("咨询赡养费问题", "{who}反映子女不按时给赡养费，想咨询法律上怎么办。", "normal"),
                  ("咨询房屋继承问题", "{who}老伴去世后，老房子的继承问题兄弟姐妹有不同意见，想咨询。", "normal")],
        "done": ["已联系村法律顾问上门解答，并帮助起草了赡养协议。", "村法律顾问已电话解答，建议先做公证。"],
    },
    "livelihood.elderly_digital": {
        "need": ["不会用智能手机", "不会视频通话"],
        "items": [("老人不会用智能手机", "{who}子女给买了智能手机，但不会视频通话，也不会看养老金到账，希望有人教一教。", "normal")],
        "done": ["网格员上门教了两次，老人已会视频通话和查养老金。"],
    },
    "livelihood.other_need": {
        "need": ["卫生间想装扶手", "想装个烟感报警器"],
        "items": [("独居老人家中安装防滑扶手", "{who}上个月在卫生间滑了一跤，希望帮忙安装防滑扶手。", "normal"),
                  ("希望安装独立式烟感报警器", "{who}家是木结构老房子，希望安装烟感报警器。", "normal")],
        "done": ["适老化改造已完成，扶手已装好。", "烟感报警器已安装并测试正常。"],
    },
    "dispute.neighbour": {
        "need": ["跟邻居有点矛盾", "邻居柴堆堵路"],
        "items": [("邻居柴堆占用通道", "{who}反映邻居在房前堆放柴火，占了进出的通道，多次沟通未果。", "normal"),
                  ("排水沟堵塞引发邻里矛盾", "{who}反映邻居把排水沟填了，下雨天积水流进自家院子。", "normal"),
                  ("宅基地界址纠纷", "{who}与邻居因房前空地的归属发生争执，双方各执一词。", "normal")],
        "done": ["经村调委会调解，双方达成一致，通道已清理。", "经调解，双方签了调解协议，排水沟已恢复。"],
    },
    "dispute.labour_wage": {
        "need": ["打工工资被拖欠"],
        "items": [("外出务工被拖欠工资", "{who}家{kin}在鄞江镇一处工地做小工，包工头拖欠工资{amount}元，多次讨要未果。", "urgent")],
        "done": ["经镇矛盾纠纷调处化解中心和劳动保障所协调，包工头已结清工资。"],
    },
    "dispute.migrant_fellow": {
        "need": ["厂里外地工人吵架"],
        "items": [("外来务工人员宿舍纠纷", "{hamlet}一家竹制品厂两名外地工人因宿舍琐事发生争执，{who}是房东，担心闹大。", "normal")],
        "done": ["已请老乡会调解员一起做工作，双方和好，其中一人调换了宿舍。"],
    },
    "dispute.construction": {
        "need": ["隔壁建房砸坏瓦片", "修路占了菜地"],
        "items": [("邻居建房施工砸坏屋瓦", "{who}反映隔壁翻建房子，施工时碎石掉到自家屋顶，瓦片被砸坏，要求赔偿。", "normal"),
                  ("修路施工占用菜地", "{who}反映村道拓宽施工时占用了自家菜地，事先没有沟通。", "normal")],
        "done": ["经调解，施工方赔偿并修好了屋瓦。", "施工方已恢复菜地，并给予青苗补偿。"],
    },
    "dispute.historical": {
        "need": ["山林边界老问题", "水库移民补助的事"],
        "items": [("山林权属历史遗留问题", "{who}反映八十年代分山到户时与邻户的山林边界没有划清，现在竹林收益起了争议。", "normal"),
                  ("水库移民后扶持资金问题", "{who}一家是皎口水库移民，反映后期扶持资金发放名单有遗漏，要求核查。", "normal")],
        "done": ["镇里组织林业站、村两委和双方当事人现场勘界，重新确定界址，双方签字确认。",
                 "经镇移民办核查，已补录名单，扶持资金已补发。"],
    },
    "dispute.other_dispute": {
        "need": ["家里兄弟为赡养吵架"],
        "items": [("兄弟间赡养老人纠纷", "{who}的几个子女为轮流赡养老人的事发生争执，老人很着急。", "normal")],
        "done": ["经村调委会调解，兄弟几人签订了赡养协议。"],
    },
    "environment.pollution_fumes_dust": {
        "need": ["农家乐油烟大"],
        "items": [("农家乐油烟影响住户", "{hamlet}一家农家乐的排烟口正对着{who}家窗户，周末客人多时油烟很大。", "normal"),
                  ("运输车扬尘", "{hamlet}村道上运石料的车没有盖篷布，扬尘很大，{who}家门口一层灰。", "normal")],
        "done": ["执法中队上门检查，农家乐已加装油烟净化器并改了排烟口方向。", "已责令运输车辆加盖篷布，村道每天洒水。"],
    },
    "environment.sanitation_waste": {
        "need": ["垃圾桶满了没人运", "溪沟里有人倒垃圾"],
        "items": [("垃圾桶满溢未及时清运", "{hamlet}路口的垃圾桶已经满了好几天，没有清运，气味很大。", "normal"),
                  ("溪沟乱倒垃圾", "{who}反映有人往{hamlet}的溪沟里倒建筑垃圾和生活垃圾。", "normal")],
        "done": ["已安排保洁员清运，并增加了清运频次。", "已清理溪沟，并在路口立了禁止倾倒的提示牌。"],
    },
    "environment.street_order": {
        "need": ["樱花节游客乱停车", "村口小广告"],
        "items": [("樱花节期间游客乱停车堵路", "樱花节期间游客车辆停在村道两边，{who}家门口进出不了，农用车也开不出去。", "normal"),
                  ("村口电线杆乱贴小广告", "{hamlet}村口的电线杆和墙上贴满了办证、贷款小广告。", "normal")],
        "done": ["村里在节日期间安排志愿者引导停车，并开放了临时停车场。", "已清理小广告。"],
    },
    "environment.noise": {
        "need": ["民宿晚上太吵"],
        "items": [("民宿夜间唱歌扰民", "{hamlet}一家民宿晚上客人在院子里唱歌到十二点，{who}反映老人睡不着。", "normal")],
        "done": ["已与民宿经营户沟通，晚上十点后停止户外娱乐活动，并签了承诺书。"],
    },
    "environment.waste_sorting": {
        "need": ["垃圾分类桶不够"],
        "items": [("垃圾分类桶数量不足", "{hamlet}只有一组分类垃圾桶，离{who}家很远，老人倒垃圾不方便。", "normal")],
        "done": ["已在{hamlet}增设一组分类垃圾桶。"],
    },
    "environment.other_env": {
        "need": ["村道边坡塌方", "路灯坏了"],
        "items": [("村道边坡塌方", "连日降雨后，{hamlet}通往村里的村道边坡塌方，泥石堆在路面上，车辆无法通行。", "critical"),
                  ("村道路灯不亮", "{hamlet}村道上有三盏路灯不亮，晚上走路不安全。", "normal")],
        "done": ["镇里安排挖机清理了塌方，边坡已加固。", "已更换路灯灯头，恢复照明。"],
    },
    "community.parking": {
        "need": ["小区停车难"],
        "items": [("樟村新村停车位不足", "樟村新村晚上车停满了，{who}家的车只能停到路边。", "normal")],
        "done": ["村里重新划了停车线，增加了十二个车位。"],
    },
    "community.dogs": {
        "need": ["有狗不拴追人"],
        "items": [("散养犬追咬行人", "{hamlet}有户人家的狗不拴，经常追着老人和小孩叫，{who}上周差点被咬。", "normal")],
        "done": ["已上门劝导犬主拴养，并做了狂犬疫苗登记。"],
    },
    "community.property_service": {
        "need": ["楼道灯不亮"],
        "items": [("安置小区楼道灯不亮", "樟村新村安置小区的楼道灯坏了很久没人修，{who}晚上上下楼看不清。", "normal")],
        "done": ["村物业服务站已更换楼道灯。"],
    },
    "community.lift_retrofit": {
        "need": ["想加装电梯"],
        "items": [("樟村新村加装电梯", "{who}住在樟村新村五楼，腿脚不好，希望单元加装电梯，想问问政策。", "normal")],
        "done": ["已告知加装电梯政策和补助标准，单元业主正在征求意见。"],
    },
    "community.old_compound_renovation": {
        "need": ["小区下水道经常堵"],
        "items": [("老小区雨污管道改造", "樟村新村的雨污管道经常堵，一下雨就冒水，{who}希望纳入老旧小区改造。", "normal")],
        "done": ["已纳入明年的雨污分流改造计划，先行疏通了管道。"],
    },
    "safety.fire_theft": {
        "need": ["家里电线老化", "有人在山上烧田埂"],
        "items": [("老旧电线存在火灾隐患", "{who}家的电线是几十年前拉的老花线，已经老化发硬，冬天用取暖器容易出事。", "urgent"),
                  ("森林防火期有人烧田埂", "{who}反映{hamlet}山脚下有人烧田埂杂草，正是森林防火期，很危险。", "urgent")],
        "done": ["已联系电工免费更换了室内线路。", "已上门劝阻并进行森林防火宣传，未造成火情。"],
    },
    "safety.work_safety": {
        "need": ["竹制品厂消防不规范"],
        "items": [("竹制品加工厂安全隐患", "{who}反映{hamlet}一家竹制品加工厂车间里堆满竹料，灭火器过期，担心着火。", "urgent")],
        "done": ["镇安监所上门检查，已责令整改，灭火器已更换，通道已清理。"],
    },
    "safety.public_order": {
        "need": ["陌生人上门推销保健品"],
        "items": [("陌生人上门向老人推销保健品", "近期有陌生人到{hamlet}挨家挨户给老人推销保健品，价格很贵，{who}担心老人被骗。", "urgent")],
        "done": ["已报派出所，民警到村里开展了防诈骗宣传，推销人员已离开。"],
    },
    "safety.migrant_services": {
        "need": ["租客要办居住登记"],
        "items": [("外来租户居住登记", "{who}家有间房出租给外地来的工人，不知道怎么办居住登记。", "normal")],
        "done": ["已上门为租户办理居住登记。"],
    },
    "suggestion.consultation": {
        "need": ["问养老金什么时候涨", "问高龄补贴政策"],
        "items": [("咨询城乡居民养老金调整", "{who}想知道今年城乡居民基础养老金什么时候调整、能涨多少。", "normal"),
                  ("咨询高龄补贴政策", "{who}想问问高龄补贴从几岁开始发、怎么领。", "normal"),
                  ("咨询农房改造补助政策", "{who}想了解农房改造有没有补助、要什么条件。", "normal")],
        "done": ["已电话答复{who}，并把政策明白纸送到家里。"],
    },
    "suggestion.suggestion": {
        "need": ["建议增加公交班次", "建议村口装护栏", "建议设快递代收点"],
        "items": [("建议增加上山公交班次", "{who}建议增加樟村到杖锡的公交班次，现在一天只有几班，老人下山看病不方便。", "normal"),
                  ("建议在急弯处安装护栏", "{who}建议在{hamlet}村道的急弯处装护栏，晚上开车很危险。", "normal"),
                  ("建议设立快递代收点", "{who}建议村里设快递代收点，现在快递只送到镇上，取一次要下山。", "normal")],
        "done": ["建议已转交相关部门，已在村便民服务站设立快递代收点。", "已在急弯处安装波形护栏和反光镜。",
                 "已向区交通部门反映，周末增加了两个班次。"],
    },
}

NOT_ACCEPTED = [  # (title, description, reason)
    ("要求村里出资修缮自家院墙", "{who}家院墙倒了一段，要求村里出钱重新砌。",
     "自家院墙属个人财产，不属于公共维修范围，已向{who}解释，并告知可申请困难家庭帮扶。"),
    ("要求补发多年前的山林补偿款", "{who}要求补发{year}年前的山林征用补偿款。",
     "经查已于当年足额发放并有签收记录，已向{who}出示凭证并解释，不予受理。"),
    ("反映邻村人员上山采笋", "{who}反映有邻县人员到附近山上采笋。", "所涉山林不在本镇辖区，已告知{who}向属地反映。"),
    ("要求给儿子安排村里工作", "{who}希望村里给在家待业的儿子安排一份工作。",
     "不属于受理范围，已推荐参加镇里的招聘会，转为就业信息服务。"),
]
SUPERVISION_NOTES = ("该事项已超过办理时限，请承办人加快办理，每周报告进展。",
                     "涉及群众切身利益，列入镇监督项目，限期办结。",
                     "群众多次反映，镇领导督办，办结后报综治中心核验。",
                     "涉及独居老人安全，优先办理，办结后回访。")

# (category, predicate on the household, weight on a visit, village hotline, 81890, walk-in, agent)
CATEGORY_USE: dict[str, tuple[str, tuple[float, float, float, float, float]]] = {
    "proxy.medical_prescription": ("elder", (9, 1, 0, 1, 12)),
    "proxy.social_insurance_registration": ("elder", (4, 0, 0, 3, 6)),
    "proxy.family_planning": ("elder", (1, 0, 0, 1, 2)),
    "proxy.civil_affairs_relief": ("elder", (4, 0, 0, 2, 5)),
    "proxy.petition": ("any", (0.6, 0, 0, 0.4, 1)),
    "proxy.housing_build_approval": ("any", (1.5, 0, 0, 1, 2)),
    "proxy.utilities": ("elder", (2, 0, 0, 0, 3)),
    "proxy.citizen_card": ("any", (2, 0, 0, 1, 3)),
    "proxy.other_proxy": ("elder", (1, 0, 0, 0, 1)),
    "livelihood.farming_inputs": ("farm", (4, 1, 0, 0, 0)),
    "livelihood.hardship_aid": ("elder", (4, 1, 0, 1, 0)),
    "livelihood.schooling": ("kids", (1.5, 0.5, 0.5, 0.5, 0)),
    "livelihood.employment": ("adult", (1.5, 0, 1, 1, 0)),
    "livelihood.skills_training": ("adult", (1, 0, 0.5, 0.5, 0)),
    "livelihood.legal_help": ("any", (1.5, 0.5, 1, 1.5, 0)),
    "livelihood.elderly_digital": ("elder", (2.5, 0, 0, 0, 0)),
    "livelihood.other_need": ("elder", (2.5, 0.5, 0, 0, 0)),
    "dispute.neighbour": ("any", (2, 2, 0.5, 1, 0)),
    "dispute.labour_wage": ("adult", (0.7, 0.5, 1.5, 0.5, 0)),
    "dispute.migrant_fellow": ("valley", (0.3, 0.5, 0.2, 0, 0)),
    "dispute.construction": ("any", (1, 1, 0.5, 0.5, 0)),
    "dispute.historical": ("any", (0.8, 0.3, 0.3, 0.5, 0)),
    "dispute.other_dispute": ("elder", (0.8, 0.5, 0, 0.3, 0)),
    "environment.pollution_fumes_dust": ("any", (0.6, 1, 1.5, 0, 0)),
    "environment.sanitation_waste": ("any", (1.5, 3, 1.5, 0, 0)),
    "environment.street_order": ("any", (0.5, 1.5, 1, 0, 0)),
    "environment.noise": ("any", (0.3, 1, 1.5, 0, 0)),
    "environment.waste_sorting": ("any", (0.6, 0.8, 0.3, 0, 0)),
    "environment.other_env": ("any", (1.2, 3, 1, 0, 0)),
    "community.parking": ("valley", (0.2, 0.5, 0.8, 0, 0)),
    "community.dogs": ("any", (0.4, 1, 0.5, 0, 0)),
    "community.property_service": ("valley", (0.3, 0.7, 0.5, 0, 0)),
    "community.lift_retrofit": ("valley", (0.1, 0, 0.3, 0.3, 0)),
    "community.old_compound_renovation": ("valley", (0.1, 0.3, 0.3, 0, 0)),
    "safety.fire_theft": ("any", (2, 1.5, 0.5, 0, 0)),
    "safety.work_safety": ("valley", (0.3, 0.5, 0.8, 0, 0)),
    "safety.public_order": ("any", (0.8, 1.5, 1, 0, 0)),
    "safety.migrant_services": ("valley", (0.3, 0, 0, 0.5, 0)),
    "suggestion.consultation": ("any", (3, 1, 2, 3, 0)),
    "suggestion.suggestion": ("any", (1.5, 1, 1.5, 0.5, 0)),
}
CHANNEL_COLUMN = {"visit": 0, "village_hotline": 1, "hotline_81890": 2, "walk_in": 3, "proxy": 4}

# What a 民情日记 entry is made of.
SEASON_WORK = {1: ("在家烤火，准备年货", "在腌咸菜、晒酱肉"), 2: ("在整理茶园，准备春茶", "在修剪茶树"),
               3: ("在采明前茶", "在茶园里除草施肥"), 4: ("在采茶、炒茶", "上山挖春笋去了"),
               5: ("在晒笋干", "在地里种番薯"), 6: ("在管理高山蔬菜", "在疏通屋后的水沟"),
               7: ("在地里摘四季豆", "在给茭白田放水"), 8: ("在地里摘茭白", "在晒干菜"),
               9: ("在收稻谷", "在摘高山蔬菜"), 10: ("在打板栗", "在挖番薯"),
               11: ("在晒番薯干", "在砍柴准备过冬"), 12: ("在做年糕", "在劈柴、准备过冬")}
SEASON_REMIND = {
    "winter": ("提醒注意用火用电安全，炭火取暖要开窗通风。", "提醒冬天路面结冰，出门要当心。"),
    "spring": ("清明前后是森林防火关键期，提醒上坟不要烧纸放鞭炮。", "提醒春季多雨，注意屋后山体有没有裂缝。"),
    "summer": ("梅雨季节，提醒注意屋后山体，有情况马上打电话。", "台风要来了，帮忙检查了门窗和屋顶。",
               "天气热，提醒老人多喝水，中午不要下地。"),
    "autumn": ("提醒防范电信诈骗，陌生电话不要随便转账。", "提醒秋冬季节森林防火，不要野外用火。"),
}
SEASON_OF = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "autumn", 6: "summer",
             7: "summer", 8: "summer", 9: "summer", 10: "autumn", 11: "winter"}
HEALTH = ("{who}精神还不错。", "{who}身体还算硬朗，自己在屋前种了点青菜。", "{who}最近腿脚不太好，走路要拄拐。",
          "{who}说最近睡眠不太好，已建议去卫生院看看。", "{who}前阵子感冒，现在已经好了。",
          "{who}有{illness}，药按时在吃，量了血压还算稳定。")
FAMILY = ("{kin}上个月回来过一趟。", "子女每周打电话回来。", "家里人都挺好。", "{kin}过年会回来。")
LEAVE = ("留下了我的联系电话，叮嘱有事随时打。", "答应回去后把情况向村里反映，尽快答复。", "把最新的惠民政策明白纸留给了家里。")
LEAVE_ELDER = ("告诉老人巡回医疗队下周上山。", "帮老人在手机上查了养老金到账情况。", "叮嘱老人按时吃药，有不舒服马上打电话。")
CLOSING = ("总体情况稳定。", "家中一切正常。", "下次走访再跟进。", "")
SYMPTOMS = ("腿脚疼得厉害", "头晕，血压不稳", "咳嗽一直不好", "胃口不好，人瘦了不少")
HARDSHIPS = ("患病多年，丧失劳动能力", "老伴去年去世，一个人生活", "儿子残疾，全家靠老人种茶维持生活")
EVENTS = ("老伴住院做了手术", "儿子在工地受伤住院", "房子被台风刮坏了一角")
KIN_WORD = {"子": "儿子", "女": "女儿", "儿媳": "儿媳", "孙子": "孙子", "孙女": "孙女", "配偶": "老伴", "户主": "儿子"}

# --------------------------------------------------------------------------------------------
# The in-memory town before it is pushed


@dataclass
class Grid:
    id: str
    name: str
    village: VillageSpec
    village_id: str
    number: int
    workers: list[str]              # usernames


@dataclass
class Person:
    id: str
    name: str
    surname: str
    gender: str
    birth_year: int
    relation: str
    residence: str = "resident"
    id_number: str = ""
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    illness: str | None = None
    notes: str | None = None

    def age(self) -> int:
        return TODAY.year - self.birth_year


@dataclass
class House:
    id: str
    grid: Grid
    hamlet: str
    address: str
    people: list[Person]
    kind: str
    worker: str                      # the grid worker who owns this household (包片联户)
    registered: datetime
    lat: float
    lng: float
    phone: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    version: int = 0
    visits: list["Visit"] = field(default_factory=list)

    @property
    def head(self) -> Person:
        return self.people[0]

    @property
    def village(self) -> VillageSpec:
        return self.grid.village

    def elder(self) -> Person | None:
        olds = [p for p in self.people if p.age() >= 60 and p.residence == "resident"]
        return max(olds, key=lambda p: p.age()) if olds else None

    def kids(self) -> list[Person]:
        return [p for p in self.people if p.age() <= 15]

    def key_population(self) -> bool:
        return any(t in self.tags for t in ("独居老人", "低保户", "困难家庭"))

    def fits(self, predicate: str) -> bool:
        if predicate == "elder":
            return self.elder() is not None
        if predicate == "kids":
            return bool(self.kids())
        if predicate == "adult":
            return any(18 <= p.age() <= 58 for p in self.people)
        if predicate == "valley":
            return not self.village.mountain
        if predicate == "farm":
            return "山区农户" in self.tags or not self.village.mountain
        return True


@dataclass
class Visit:
    id: str
    house: House
    worker: str
    at: datetime
    needs: list[tuple[str, str]]     # (category, need as written)


@dataclass
class Op:
    """One write of a matter's story: create the matter, update it, or add an event."""

    kind: str                        # create | update | event
    fields: dict[str, Any]
    id: str | None = None            # event id


def signature_png(seed_value: int, width: int = 160, height: int = 48) -> bytes:
    """A small greyscale PNG of a scribbled signature, different for every seed (demo only)."""
    r = random.Random(seed_value)
    waves = [(r.uniform(0.05, 0.2), r.uniform(4, 14), r.uniform(0, 6.3)) for _ in range(3)]
    ink = set()
    for x in range(8, width - 8):
        y = height / 2 + sum(a * 40 * math.sin(x * f / 40 + ph) for a, f, ph in waves) / 3
        for dy in (-1, 0, 1):
            yy = int(y) + dy
            if 0 <= yy < height:
                ink.add((x, yy))
    raw = b"".join(b"\x00" + bytes(0 if (x, y) in ink else 255 for x in range(width)) for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


@dataclass
class Step:
    who: str
    at: datetime
    ops: list[Op]


@dataclass
class Plan:
    id: str
    house: House
    final: str
    steps: list[Step] = field(default_factory=list)
    category: str | None = None
    supervised: bool = False


# --------------------------------------------------------------------------------------------
# Helpers for time


def _iso(dt: datetime) -> str:
    return dt.astimezone(CST).isoformat(timespec="seconds")


def _workday(d: date) -> date:
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


def _add_workdays(d: date, n: int) -> date:
    while n > 0:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n -= 1
    return d


class _Rand(random.Random):
    """random.Random with the few draws the demo needs; every id comes from here."""

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.getrandbits(128), version=4))

    def at_work(self, d: date, weekend_ok: bool = False) -> datetime:
        if not weekend_ok:
            d = _workday(d)
        if self.random() < 0.55:
            minute = self.randint(8 * 60 + 30, 11 * 60 + 40)
        else:
            minute = self.randint(13 * 60 + 30, 17 * 60)
        return datetime.combine(d, time(minute // 60, minute % 60), CST)

    def after(self, t: datetime, min_hours: float, max_hours: float) -> datetime:
        """A working-hours time between min and max hours after ``t`` (moved to the next workday if needed)."""
        cand = t + timedelta(hours=self.uniform(min_hours, max_hours))
        if cand.weekday() >= 5 or not time(8, 0) <= cand.time() <= time(17, 30):
            nxt = cand.date() + timedelta(days=1) if cand.time() > time(12) else cand.date()
            cand = self.at_work(nxt)
            if cand <= t:
                cand = self.at_work(t.date() + timedelta(days=1))
        return cand

    def mobile(self) -> str:
        prefix = self.choice(("133", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
                              "177", "180", "181", "183", "187", "188", "189", "199"))
        return prefix + "".join(str(self.randint(0, 9)) for _ in range(8))

    def landline(self) -> str:
        exchange = self.choice(("8830", "8831", "8832", "8835"))
        return "0574-" + exchange + "".join(str(self.randint(0, 9)) for _ in range(4))

    def weighted(self, items: Sequence[Any], weights: Sequence[float]) -> Any:
        return self.choices(items, weights=weights, k=1)[0]


def _id_number(rng: _Rand, prefix: str, birth_year: int, gender: str, used: set[str]) -> str:
    """An 18-digit resident ID with a real ISO 7064 MOD 11-2 check character."""
    while True:
        born = date(birth_year, 1, 1) + timedelta(days=rng.randint(0, 364))
        seq = rng.randint(0, 99) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "male" else (0, 2, 4, 6, 8))
        body = f"{prefix}{born:%Y%m%d}{seq:03d}"
        total = sum(int(c) * w for c, w in zip(body, (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)))
        number = body + "10X98765432"[total % 11]
        if number not in used:
            used.add(number)
            return number


def _home_prefix(birth_year: int) -> str:
    """章水镇 was in 鄞县 (330227), then 鄞州区 (330212, from 2002), then 海曙区 (330203, from 2016)."""
    return "330227" if birth_year < 2002 else "330212" if birth_year < 2017 else "330203"


# --------------------------------------------------------------------------------------------
# The seeder


class _Seeder:
    def __init__(self, store: SQLiteStore, seed_value: int) -> None:
        self.store = store
        self.rng = _Rand(seed_value)
        self.actors: dict[str, Actor] = {}
        self.user_ids: dict[str, str] = {}
        self.display: dict[str, str] = {}
        self.categories = {c["code"]: c for c in load_catalogue()}
        self.grids: list[Grid] = []
        self.houses: list[House] = []
        self.visits: list[Visit] = []
        self.agent_of: dict[str, str] = {v: a[0] for v, a in AGENTS.items()}
        self.used_ids: set[str] = set()
        self.blobs: dict[str, bytes] = {}   # signatures and witness photos, written by write_blobs
        # Should the machine's clock be behind the demo's "today", the engine would clamp every
        # `at` to it; pretending the pushes arrive just after the demo's end keeps the content the same.
        self.now = None if utcnow() > END + timedelta(hours=1) else END + timedelta(hours=1)

    def blob(self, seed_value: int) -> str:
        data = signature_png(seed_value)
        sha = hashlib.sha256(data).hexdigest()
        self.blobs[sha] = data
        return sha

    def write_blobs(self, root: str | BlobBytes) -> None:
        """The demo's signature images, as complete blobs: uploaded, as phones would have, by the
        users whose records cite them (so those citations count, docs/protocol.md §10)."""
        from sync.blobs import BlobStore

        bs = BlobStore(root)
        at = iso(self.now or utcnow())
        with self.store.transaction():
            for sha, data in sorted(self.blobs.items()):
                bs.adopt(self.store, data, self.store.blob_citers(sha) or [self.user_ids.get("agent1", "system")], at)

    # -- pushing -------------------------------------------------------------------------------
    def mutation(self, coll: str, rid: str, fields: dict[str, Any], at: datetime, base: int = 0) -> MutationIn:
        return MutationIn(mid=self.rng.uuid(), collection=coll, id=rid, op="upsert", base=base, fields=fields,
                          at=_iso(at))

    def push(self, who: str, mutations: list[MutationIn], expect: tuple[str, ...] = ("applied",)) -> list[PushResult]:
        results: list[PushResult] = []
        for i in range(0, len(mutations), BATCH):
            chunk = mutations[i:i + BATCH]
            resp = engine.push(self.store, self.actors[who], PushRequest(protocol=1, mutations=chunk), now=self.now)
            for m, r in zip(chunk, resp.results):
                if r.status not in expect:
                    raise RuntimeError(f"demo seed: {who}'s {m.collection} {m.id} came back {r.status}: {r.error} "
                                       f"(fields {m.fields})")
            results.extend(resp.results)
        return results

    # -- areas and users -------------------------------------------------------------------------
    def build_areas_and_users(self, password_hash: str) -> None:
        rng = self.rng
        self.add_user(ADMIN, "admin", [], password_hash)
        county, town = rng.uuid(), rng.uuid()
        at = datetime(2024, 10, 28, 9, 0, tzinfo=CST)
        # `mountain` is inherited down the tree, so it is set per village: 樟村 lies in the valley.
        # The codes and official names of the national code list (docs/samples/haishu-330203.csv), so
        # that `gridbook area import` of the county's list finds these areas as they are.
        muts = [self.mutation("areas", county, {"level": "county", "name": "海曙区", "official_name": "海曙区",
                                                "code": "330203000000", "sort": 1}, at),
                self.mutation("areas", town, {"parent_id": county, "level": "town", "name": "章水镇",
                                              "official_name": "章水镇", "code": "330203106000", "sort": 106}, at)]
        for vi, v in enumerate(VILLAGES):
            vid = rng.uuid()
            muts.append(self.mutation("areas", vid, {"parent_id": town, "level": "village", "name": v.name,
                                                     "official_name": v.name + "村委会", "code": v.code,
                                                     "mountain": v.mountain, "sort": vi + 1}, at))
            for n in range(1, v.grids + 1):
                gid = rng.uuid()
                name = f"{v.name}第{CN_NUM[n - 1]}网格"
                muts.append(self.mutation("areas", gid, {"parent_id": vid, "level": "grid", "name": name,
                                                         "code": f"{v.code}{n:02d}", "mountain": v.mountain,
                                                         "sort": n}, at))
                self.grids.append(Grid(gid, name, v, vid, n, [u for u, _ in GRID_WORKERS[(v.key, n)]]))
        self.push("admin", muts)
        self.town_id = town
        self.add_user(STAFF1, "staff", [town], password_hash)
        self.add_user(HANDLER, "staff", [town], password_hash)
        for g in self.grids:
            for username, display in GRID_WORKERS[(g.village.key, g.number)]:
                self.add_user((username, display), "grid_worker", [g.id], password_hash)
        village_ids = {g.village.key: g.village_id for g in self.grids}
        for vkey, agent in AGENTS.items():
            self.add_user(agent, "proxy_agent", [village_ids[vkey]], password_hash)

    def add_user(self, who: tuple[str, str], role: str, areas: list[str], password_hash: str) -> None:
        username, display = who
        uid = accounts.create_user(self.store, username, PASSWORD, role, areas, display_name=display,
                                   phone=self.rng.mobile(), user_id=self.rng.uuid(), password_hash=password_hash)
        login = accounts.login(self.store, username, PASSWORD, f"{display}的手机")
        self.actors[username] = accounts.authenticate(self.store, login.token)
        self.user_ids[username] = uid
        self.display[username] = display

    # -- households and residents ---------------------------------------------------------------
    def name(self, surname: str, gender: str, birth_year: int) -> str:
        for limit, (male, female) in GIVEN.items():
            if birth_year < limit:
                return surname + self.rng.choice(male if gender == "male" else female)
        raise AssertionError(birth_year)

    def surname(self, v: VillageSpec) -> str:
        big, share = v.clan
        return big if self.rng.random() < share else self.rng.choice(SURNAMES)

    def person(self, surname: str, gender: str, birth_year: int, relation: str, married_in: bool = False) -> Person:
        rng = self.rng
        prefix = rng.choice(MARRIED_IN) if married_in and rng.random() < 0.35 else _home_prefix(birth_year)
        p = Person(rng.uuid(), self.name(surname, gender, birth_year), surname, gender, birth_year, relation)
        p.id_number = _id_number(rng, prefix, birth_year, gender, self.used_ids)
        return p

    def family(self, v: VillageSpec, kind: str) -> list[Person]:
        rng = self.rng
        s = self.surname(v)
        y = TODAY.year
        people: list[Person] = []
        if kind == "alone":
            g = "female" if rng.random() < 0.62 else "male"
            people.append(self.person(s, g, y - rng.randint(70, 93), "户主"))
        elif kind == "old_couple":
            h = y - rng.randint(66, 90)
            people.append(self.person(s, "male", h, "户主"))
            people.append(self.person(self.surname(v), "female", min(h + rng.randint(-2, 6), y - 62), "配偶", True))
        elif kind == "three_gen":
            gp = y - rng.randint(62, 84)
            people.append(self.person(s, "male", gp, "户主"))
            if rng.random() < 0.7:
                people.append(self.person(self.surname(v), "female", gp + rng.randint(0, 5), "配偶", True))
            son = gp + rng.randint(22, 30)
            people.append(self.person(s, "male", son, "子"))
            people.append(self.person(self.surname(v), "female", son + rng.randint(-1, 4), "儿媳", True))
            for _ in range(rng.randint(1, 2)):
                if len(people) < 5:
                    kid = max(son + rng.randint(23, 32), y - 17)
                    kg = rng.choice(("male", "female"))
                    people.append(self.person(s, kg, min(kid, y - 1), "孙子" if kg == "male" else "孙女"))
        elif kind == "family":
            h = y - rng.randint(36, 55)
            people.append(self.person(s, "male", h, "户主"))
            people.append(self.person(self.surname(v), "female", h + rng.randint(-1, 4), "配偶", True))
            for _ in range(rng.randint(1, 2)):
                kg = rng.choice(("male", "female"))
                people.append(self.person(s, kg, min(h + rng.randint(23, 33), y - 2), "子" if kg == "male" else "女"))
        elif kind == "mid_couple":
            h = y - rng.randint(50, 68)
            people.append(self.person(s, "male", h, "户主"))
            people.append(self.person(self.surname(v), "female", h + rng.randint(-1, 4), "配偶", True))
        elif kind == "single":
            people.append(self.person(s, "male", y - rng.randint(40, 66), "户主"))
        else:  # old parent cared for by an unmarried or widowed child
            c = y - rng.randint(45, 62)
            g = rng.choice(("male", "female"))
            people.append(self.person(s, g, c, "户主"))
            pg = "female" if rng.random() < 0.7 else "male"
            people.append(self.person(s if pg == "male" else self.surname(v), pg, c - rng.randint(22, 30),
                                      "母亲" if pg == "female" else "父亲"))
        return people

    def build_households(self) -> None:
        rng = self.rng
        kinds = ["alone", "old_couple", "three_gen", "family", "mid_couple", "single", "old_with_child"]
        mountain_w = [20, 23, 18, 13, 15, 5, 6]
        valley_w = [8, 17, 25, 25, 17, 4, 4]
        for g in self.grids:
            v = g.village
            hamlets = v.hamlets[(g.number - 1) * 2 % len(v.hamlets):][:3] or v.hamlets[:3]
            numbers = {h: 0 for h in hamlets}
            offsets = {h: (rng.uniform(-0.008, 0.008), rng.uniform(-0.008, 0.008)) for h in hamlets}
            for i in range(rng.randint(112, 128)):
                kind = rng.weighted(kinds, mountain_w if v.mountain else valley_w)
                people = self.family(v, kind)
                hamlet = rng.choice(hamlets)
                numbers[hamlet] += rng.randint(1, 3)
                worker = g.workers[0] if len(g.workers) == 1 or i % 2 == 0 else g.workers[1]
                day = SURVEY[0] + timedelta(days=rng.randint(0, (SURVEY[1] - SURVEY[0]).days))
                dlat, dlng = offsets[hamlet]
                house = House(rng.uuid(), g, hamlet, f"{v.name}{hamlet}{numbers[hamlet]}号", people, kind, worker,
                              rng.at_work(day), round(v.lat + dlat + rng.uniform(-0.0015, 0.0015), 6),
                              round(v.lng + dlng + rng.uniform(-0.0015, 0.0015), 6))
                self.describe(house)
                self.houses.append(house)

    def describe(self, h: House) -> None:
        """Residence, tags, phones and the notes a grid worker would write on the information card."""
        rng = self.rng
        v = h.village
        away_parents = v.mountain and rng.random() < 0.65 or not v.mountain and rng.random() < 0.3
        disabled: Person | None = None
        for p in h.people:
            age = p.age()
            if 18 <= age <= 50 and p.relation in ("子", "儿媳", "女") and (away_parents or rng.random() < 0.2):
                p.residence = "away"
                p.tags.append("外出务工")
                p.notes = rng.choice(AWAY_PLACES)
                if p.notes == "在外地读大学" and age > 24:
                    p.notes = "在宁波市区打工"
            if age >= 55 and rng.random() < (0.45 if age >= 70 else 0.25):
                p.illness = rng.choice(ILLNESSES)
                p.tags.append("慢性病")
                p.notes = f"患{p.illness}，长期服用{rng.choice(ILLNESS_DRUG[p.illness])}。"
            if age >= 80:
                p.tags.append("高龄")
            if disabled is None and rng.random() < (0.06 if age >= 60 else 0.025):
                disabled = p
                kind = rng.choice(("肢体", "肢体", "视力", "听力", "智力"))
                p.tags.append("残疾人")
                p.notes = (p.notes or "") + f"{kind}残疾，已办残疾证。"
            if 16 <= age <= 80 and (age < 70 or rng.random() < 0.45) and rng.random() < 0.85:
                p.phone = rng.mobile()
        kids = h.kids()
        parents_away = [p for p in h.people if p.relation in ("子", "儿媳") and p.residence == "away"]
        tags: list[str] = []
        if h.kind == "alone":
            tags.append("独居老人")
        if kids and len(parents_away) >= 2:
            tags.append("留守儿童")
            for k in kids:
                k.tags.append("留守儿童")
        if disabled is not None:
            tags.append("残疾人")
        poor = 0.22 if h.kind == "alone" and v.mountain else 0.1 if h.kind in ("alone", "single") else 0.02
        if disabled is not None:
            poor += 0.2
        if rng.random() < poor:
            tags.append("低保户")
        if ("低保户" in tags and rng.random() < 0.5) or rng.random() < 0.015:
            tags.append("困难家庭")
        if 50 <= h.head.age() <= 82 and rng.random() < 0.05:
            tags.append("党员中心户")
            h.head.tags.append("党员")
        elif h.head.age() >= 40 and rng.random() < 0.06:
            h.head.tags.append("党员")
        if v.mountain and rng.random() < 0.9:
            tags.append("山区农户")
        h.tags = tags
        phones = [p.phone for p in h.people if p.phone and p.residence == "resident"]
        if phones:
            h.phone = phones[0]
        elif rng.random() < 0.6:
            h.phone = rng.landline()
        else:
            away = [p for p in h.people if p.phone]
            h.phone = away[0].phone if away else None
        h.notes = self.card_notes(h, disabled)

    def card_notes(self, h: House, disabled: Person | None) -> str:
        rng = self.rng
        parts: list[str] = []
        head = h.head
        if h.kind == "alone":
            parts.append(rng.choice(("老人独居，儿子在宁波市区上班，每月回来一两次。", "老人独居，女儿嫁在鄞江镇，周末常回来看看。",
                                     "老人独居，无子女，村里列为重点关注对象。", "老伴前几年走了，子女在杭州打工，过年回来。")))
        elif h.kind == "three_gen" and "留守儿童" in h.tags:
            parts.append("孩子父母在外打工，孩子由爷爷奶奶照看，在章水镇中心小学读书。")
        elif h.kind == "old_with_child":
            parts.append("子女在家照顾年迈的老人，家里主要靠打零工和种茶收入。")
        elif h.kind == "old_couple":
            parts.append(rng.choice(("老两口一起生活，子女都在外地。", "老两口身体尚可，自己种点菜。",
                                     "老两口同住，儿子住在樟村，常上来看看。")))
        if head.illness and head.age() >= 60:
            parts.append(f"户主有{head.illness}，需定期配药。")
        if disabled is not None:
            parts.append(f"户内有残疾人一名（{disabled.name}），已办残疾证。")
        if "低保户" in h.tags:
            parts.append(f"{rng.randint(2016, 2024)}年起享受低保，每年复核一次。")
        if "党员中心户" in h.tags:
            parts.append(f"户主是老党员，为本片党员中心户，联系周边{rng.randint(6, 12)}户。")
        if h.village.mountain:
            if rng.random() < 0.5:
                parts.append(rng.choice(("家里种茶叶和高山蔬菜。", "家里有毛竹山，春天挖笋、晒笋干。", "家里养了几箱土蜂。",
                                         "屋后是山坡，雨季注意地质灾害隐患。", "冬天用炭火取暖，已提醒注意通风防火。")))
            if h.village.key == "lijiakeng" and rng.random() < 0.08:
                parts.append("家里开了民宿，节假日游客较多。")
        elif rng.random() < 0.4:
            parts.append(rng.choice(("家里在镇上开小店。", "户主在附近竹制品厂上班。", "住在樟村新村安置小区。")))
        return "".join(parts)

    def push_households(self) -> None:
        by_worker: dict[str, list[tuple[datetime, MutationIn]]] = {}
        for h in self.houses:
            fields = {"grid_id": h.grid.id, "address": h.address, "head_name": h.head.name,
                      "members_count": len(h.people), "phone": h.phone, "tags": sorted(h.tags), "notes": h.notes,
                      "location": {"lat": h.lat, "lng": h.lng}}
            rows = by_worker.setdefault(h.worker, [])
            rows.append((h.registered, self.mutation("households", h.id, fields, h.registered)))
            for i, p in enumerate(h.people):
                pf = {"household_id": h.id, "name": p.name, "gender": p.gender, "birth_year": p.birth_year,
                      "id_number": p.id_number, "phone": p.phone, "relation": p.relation, "residence": p.residence,
                      "tags": sorted(p.tags), "notes": p.notes}
                at = h.registered + timedelta(minutes=2 * (i + 1))
                rows.append((at, self.mutation("residents", p.id, pf, at)))
        for worker in sorted(by_worker):
            rows = sorted(by_worker[worker], key=lambda r: r[0])
            results = self.push(worker, [m for _, m in rows])
            for (_, m), r in zip(rows, results):
                if m.collection == "households":
                    self.house_by_id[m.id].version = r.version or 0

    @property
    def house_by_id(self) -> dict[str, House]:
        if not hasattr(self, "_house_by_id"):
            self._house_by_id = {h.id: h for h in self.houses}
        return self._house_by_id

    # -- words -----------------------------------------------------------------------------------
    @staticmethod
    def who(p: Person) -> str:
        """How a grid worker writes about someone: 黄大伯, 李阿婆, or the full name."""
        if p.age() >= 60:
            if p.gender == "male":
                return p.surname + ("大伯" if p.birth_year % 2 else "阿公")
            return p.surname + ("阿婆" if p.birth_year % 2 else "大妈")
        return p.name

    def context(self, h: House, p: Person) -> dict[str, Any]:
        rng = self.rng
        illness = p.illness or next((q.illness for q in h.people if q.illness), None) or "高血压"
        others = [q for q in h.people if q is not p and q.relation in KIN_WORD and q.relation != "户主"]
        kids = h.kids()
        return {"who": self.who(p), "name": p.name, "hamlet": h.hamlet, "village": h.village.name, "age": p.age(),
                "illness": illness, "drug": ILLNESS_DRUG[illness][0],
                "kin": KIN_WORD[others[0].relation] if others else "儿子",
                "kid": KIN_WORD.get(kids[0].relation, "孩子") if kids else "孩子",
                "n": rng.randint(2, 8), "amount": rng.randint(30, 280) * 100, "year": rng.randint(2008, 2019),
                "symptom": rng.choice(SYMPTOMS), "hardship": rng.choice(HARDSHIPS), "event": rng.choice(EVENTS)}

    def concerned(self, h: House, category: str | None) -> Person:
        predicate = CATEGORY_USE[category][0] if category else "any"
        if predicate == "elder" and h.elder() is not None:
            return h.elder()  # type: ignore[return-value]
        if predicate == "adult":
            adults = [p for p in h.people if 18 <= p.age() <= 58]
            if adults:
                return adults[0]
        return h.head

    def pick_category(self, h: House, column: int) -> str:
        codes = [c for c, (pred, w) in CATEGORY_USE.items() if w[column] > 0 and h.fits(pred)]
        return str(self.rng.weighted(codes, [CATEGORY_USE[c][1][column] for c in codes]))

    # -- visits ----------------------------------------------------------------------------------
    def build_visits(self) -> None:
        rng = self.rng
        for h in self.houses:
            key = h.key_population()
            # Some households slip: nobody has been for one to seven months (the app lists them first).
            stale = rng.random() < (0.05 if key else 0.1)
            cutoff = END - timedelta(days=rng.uniform(35, 220)) if stale else END
            t = h.registered + timedelta(minutes=15)
            first = True
            while t <= cutoff:
                worker = h.worker
                if len(h.grid.workers) > 1 and rng.random() < 0.15:
                    worker = next(w for w in h.grid.workers if w != h.worker)
                needs: list[tuple[str, str]] = []
                if not first:
                    roll = rng.random()
                    for _ in range(2 if roll < 0.04 else 1 if roll < 0.26 else 0):
                        cat = self.pick_category(h, CHANNEL_COLUMN["visit"])
                        text = rng.choice(TEXTS[cat]["need"]).format(**self.context(h, self.concerned(h, cat)))
                        if all(c != cat for c, _ in needs):
                            needs.append((cat, text))
                v = Visit(rng.uuid(), h, worker, t, needs)
                h.visits.append(v)
                self.visits.append(v)
                first = False
                gap = min(45.0, max(16.0, rng.gauss(30, 6))) if key else rng.uniform(55, 120)
                t = rng.at_work((t + timedelta(days=gap)).date(), weekend_ok=rng.random() < 0.08)

    def narrative(self, v: Visit, first: bool) -> str:
        rng = self.rng
        h = v.house
        p = h.elder() or h.head
        ctx = self.context(h, p)
        part = "上午" if v.at.hour < 12 else "下午"
        if first:
            return (f"{part}入户调查，登记家庭成员{len(h.people)}人和基本情况，填写住户信息卡。"
                    + (h.notes or "") + "留下了联系电话，讲了网格员的职责，有事可以随时找我。")
        out = [rng.choice((f"{part}到{h.hamlet}走访{ctx['who']}。", f"{part}入户走访{ctx['who']}家。",
                           f"今天{part}上门看望{ctx['who']}。", f"{part}到{ctx['who']}家坐了坐。"))]
        if h.elder() is not None and rng.random() < 0.7:
            out.append(rng.choice(HEALTH).format(**ctx))
        else:
            out.append(f"{ctx['who']}正{rng.choice(SEASON_WORK[v.at.month])}。")
        if rng.random() < 0.35:
            out.append(rng.choice(FAMILY).format(**ctx))
        for _, need in v.needs:
            out.append(rng.choice(("{who}提到{need}，已记下。", "{who}反映{need}，答应帮忙联系。",
                                   "{who}反映{need}，回去后跟村里商量。")).format(who=ctx["who"], need=need))
        if rng.random() < 0.5:
            remind = rng.choice(SEASON_REMIND[SEASON_OF[v.at.month]])
            out.append(remind if h.elder() is not None else remind.replace("老人", "家里人"))
        if rng.random() < 0.6:
            out.append(rng.choice(LEAVE + LEAVE_ELDER if h.elder() is not None else LEAVE))
        out.append(rng.choice(CLOSING))
        return "".join(out)

    def push_visits(self) -> None:
        rng = self.rng
        by_worker: dict[str, list[tuple[datetime, MutationIn]]] = {}
        for h in self.houses:
            for i, v in enumerate(h.visits):
                checklist = {item: rng.random() < 0.93 for item in
                             ("left_phone", "left_help_intention", "left_commitment",
                              "took_situation", "took_difficulties", "took_suggestions")}
                if v.needs:
                    checklist["took_difficulties"] = True
                fields: dict[str, Any] = {"household_id": h.id, "visited_at": _iso(v.at),
                                          "narrative": self.narrative(v, i == 0), "checklist": checklist,
                                          "needs": [n for _, n in v.needs]}
                if rng.random() < 0.45:
                    fields["gps"] = {"lat": round(h.lat + rng.uniform(-0.0003, 0.0003), 6),
                                     "lng": round(h.lng + rng.uniform(-0.0003, 0.0003), 6),
                                     "accuracy": float(rng.randint(5, 40))}
                at = v.at + timedelta(minutes=rng.randint(5, 30))
                by_worker.setdefault(v.worker, []).append((at, self.mutation("visits", v.id, fields, at)))
        for worker in sorted(by_worker):
            rows = sorted(by_worker[worker], key=lambda r: r[0])
            self.push(worker, [m for _, m in rows])

    # -- matters ---------------------------------------------------------------------------------
    def build_matters(self) -> list[Plan]:
        rng = self.rng
        start = datetime(2024, 11, 25, 9, 0, tzinfo=CST)
        windows = {"closed": (start, END - timedelta(days=28)),
                   "resolved": (END - timedelta(days=45), END - timedelta(days=6)),
                   "reopened": (END - timedelta(days=60), END - timedelta(days=15)),
                   "in_progress": (END - timedelta(days=16), END - timedelta(days=2)),
                   "assigned": (END - timedelta(days=10), END - timedelta(days=2)),
                   "waiting_materials": (END - timedelta(days=18), END - timedelta(days=4)),
                   "escalated": (END - timedelta(days=200), END - timedelta(days=15)),
                   "accepted": (END - timedelta(days=5), END - timedelta(days=1)),
                   "submitted": (END - timedelta(days=3), END - timedelta(hours=2)),
                   "not_accepted": (start, END - timedelta(days=10))}
        # About 87% of what is collected ends resolved or closed (化解率 1169/1337 = 87.4% in Haishu).
        quota = [("closed", 300), ("resolved", 26), ("in_progress", 10), ("assigned", 6), ("waiting_materials", 5),
                 ("escalated", 6), ("accepted", 5), ("submitted", 8), ("reopened", 3), ("not_accepted", 6)]
        pool = sorted((v.at, i) for i, v in enumerate(self.visits) if v.needs)
        pool_at = [a for a, _ in pool]
        used: set[int] = set()
        plans: list[Plan] = []

        # Scripted first: agent1 (杖锡村) always has open proxy work on the phone.
        zx1 = [h for h in self.houses if h.grid.village.key == "zhangxi" and h.grid.number == 1 and h.elder()]
        picks = rng.sample(zx1, 5)
        for (final, cat), h in zip((("waiting_materials", "proxy.civil_affairs_relief"),
                                    ("in_progress", "proxy.medical_prescription"),
                                    ("in_progress", "proxy.social_insurance_registration"),
                                    ("assigned", "proxy.citizen_card")), picks):
            lo, hi = windows[final]
            raised = rng.at_work((lo + (hi - lo) * rng.random()).date())
            plans.append(self.plan(final, "proxy", cat, h, raised, "agent1"))
        self.contested = plans[1]          # escalated by staff while agent1 resolves it offline (collide)
        raised = rng.at_work((END - timedelta(days=2)).date())
        plans.append(self.plan("submitted", "village_hotline", "proxy.housing_build_approval", picks[4], raised,
                               "worker1"))

        channels = ["visit", "village_hotline", "hotline_81890", "walk_in", "proxy"]
        for final, n in quota:
            lo, hi = windows[final]
            for _ in range(n):
                channel = rng.weighted(channels, [58, 14, 10, 8, 10])
                visit: Visit | None = None
                if channel == "visit":
                    a, b = bisect.bisect_left(pool_at, lo), bisect.bisect_right(pool_at, hi)
                    free = [pool[k][1] for k in range(a, b) if pool[k][1] not in used]
                    if free:
                        idx = rng.choice(free)
                        used.add(idx)
                        visit = self.visits[idx]
                    else:
                        channel = "village_hotline"
                if visit is not None:
                    h, cat, raised, creator = visit.house, visit.needs[0][0], visit.at, visit.worker
                else:
                    if channel == "proxy":
                        candidates = [h for h in self.houses if h.village.key in AGENTS]
                    else:
                        candidates = self.houses
                    h = rng.choice(candidates)
                    cat = self.pick_category(h, CHANNEL_COLUMN[channel])
                    raised = rng.at_work((lo + (hi - lo) * rng.random()).date(), weekend_ok=channel == "hotline_81890")
                    raised = min(raised, hi)
                    creator = {"village_hotline": h.worker, "hotline_81890": STAFF1[0], "walk_in": STAFF1[0],
                               "proxy": self.agent_of.get(h.village.key, h.worker)}[channel]
                plans.append(self.plan(final, channel, cat, h, raised, creator, visit))

        # The same public problem reported twice: staff merge the second into the first.
        public = [p for p in plans if p.category and p.category.split(".")[0] in ("environment", "safety")
                  and p.final in ("closed", "resolved", "in_progress") and p.steps[0].at < END - timedelta(days=10)]
        for original in rng.sample(public, 6):
            plans.append(self.duplicate(original))

        # 督办: staff put some matters under supervision (all escalated ones, some overdue, some long ago).
        for p in plans:
            if p.final == "escalated" or p.final in ("in_progress", "waiting_materials") and rng.random() < 0.5 \
                    or p.final == "closed" and rng.random() < 0.03:
                self.supervise(p)
        return plans

    def plan(self, final: str, channel: str, category: str, h: House, raised: datetime, creator: str,
             visit: Visit | None = None) -> Plan:
        """A matter and its story, step by step, ending in ``final``."""
        rng = self.rng
        p = Plan(rng.uuid(), h, final, category=category)
        person = self.concerned(h, category)
        ctx = self.context(h, person)
        cat = self.categories[category]
        agent = self.agent_of.get(h.village.key)
        proxy = category.startswith("proxy.") and agent is not None and channel in ("proxy", "visit", "village_hotline")
        if final == "not_accepted":
            title, desc, reason = rng.choice(NOT_ACCEPTED)
            title, desc, reason = title, desc.format(**ctx), reason.format(**ctx)
            urgency = "normal"
        else:
            title, desc, urgency = rng.choice(TEXTS[category]["items"])
            title, desc = title.format(**ctx), desc.format(**ctx)
            reason = ""
        staff_creator = creator in (STAFF1[0], HANDLER[0])
        # Workers often leave the category to the centre (一窗通办: the resident does not choose a matter type).
        given_category = category if staff_creator or creator in self.agent_of.values() or rng.random() > 0.35 \
            else None
        if final == "not_accepted":
            given_category = None
        p.category = category if final != "not_accepted" else None
        assignee: str = agent if proxy and agent else h.worker if cat["lowest_level"] == "village" else HANDLER[0]
        fields: dict[str, Any] = {"household_id": h.id, "resident_id": person.id, "category": given_category,
                                  "title": title, "description": desc, "channel": channel,
                                  "handling_mode": "proxy" if proxy else "direct", "urgency": urgency,
                                  "raised_at": _iso(raised)}
        if visit is not None:
            fields["visit_id"] = visit.id
        if proxy:
            fields["assignee_id"] = self.user_ids[str(agent)]
        t = raised + timedelta(minutes=rng.randint(10, 50) if channel == "visit" else rng.randint(2, 20))
        p.steps.append(Step(creator, t, [Op("create", fields)]))
        status = "submitted"

        def move(who: str, at: datetime, to: str, note: str, extra: list[Op] | None = None,
                 **more: Any) -> datetime:
            nonlocal status
            ev = {"matter_id": p.id, "kind": "status", "from": status, "to": to, "note": note, **more}
            p.steps.append(Step(who, at, (extra or []) + [Op("event", ev, rng.uuid())]))
            status = to
            return at

        def event(who: str, at: datetime, kind: str, note: str, **more: Any) -> datetime:
            p.steps.append(Step(who, at, [Op("event", {"matter_id": p.id, "kind": kind, "note": note, **more},
                                             rng.uuid())]))
            return at

        staff = STAFF1[0]
        if final == "submitted":
            return self.fit(p)
        if final == "not_accepted":
            move(staff, rng.after(t, 2, 30), "not_accepted", reason)
            return self.fit(p)
        # 受理: the centre classifies, routes to a line and level, and sets the time limit (时效).
        t = rng.after(t, 1, 40)
        deadline = _add_workdays(t.date(), int(cat["deadline_days"]))
        triage = {"category": category, "line": cat["line"], "level": cat["lowest_level"],
                  "deadline": deadline.isoformat()}
        move(staff, t, "accepted", f"已受理，归口{LINE_ZH[cat['line']]}，由{LEVEL_ZH[cat['lowest_level']]}级办理，"
                                   f"时限{cat['deadline_days']}个工作日。", [Op("update", triage)])
        if final == "accepted":
            return self.fit(p)
        # 派单
        t = rng.after(t, 0.5, 24)
        extra = [] if proxy else [Op("update", {"assignee_id": self.user_ids[assignee]})]
        move(staff, t, "assigned", f"派单给{self.display[assignee]}办理，请于{deadline:%m月%d日}前办结。", extra,
             for_user_id=self.user_ids[assignee])
        if final == "assigned":
            return self.fit(p)
        # 接单; a proxy agent first records the resident's authorisation (委托) with a signature,
        # or, for a resident who cannot sign, a witness and a photo.
        t = rng.after(t, 1, 30)
        agent_uid = self.user_ids[assignee]
        delegate: list[Op] = []
        if proxy:
            sig = self.blob(rng.randint(1, 10 ** 9))
            if rng.random() < 0.2:
                photo = self.blob(rng.randint(1, 10 ** 9))
                ddata: dict[str, Any] = {"until": (t + timedelta(days=120)).date().isoformat(),
                                         "witness": {"name": self.who(h.head) if h.head is not person else "村民小组长",
                                                     "relation": "家属" if h.head is not person else "村民小组长"},
                                         "photo": photo}
                shas, dnote = [photo], f"{ctx['who']}不会写字，按手印确认，由见证人在场并拍照。"
            else:
                ddata = {"until": (t + timedelta(days=120)).date().isoformat(), "signature": sig}
                shas, dnote = [sig], f"{ctx['who']}在手机上签字，委托代办员办理。"
            delegate = [Op("event", {"matter_id": p.id, "kind": "delegation", "for_resident_id": person.id,
                                     "for_user_id": agent_uid, "note": dnote, "data": ddata, "attachments": shas},
                           rng.uuid())]
        start_note = ("已接单，约好时间上门收取材料。" if proxy else "已接单，约双方当事人了解情况。"
                      if category.startswith("dispute.") else "已接单，到现场看过了。"
                      if category.split(".")[0] in ("environment", "safety", "community") else "已接单，马上联系群众了解情况。")
        move(assignee, t, "in_progress", start_note, delegate)
        materials = cat.get("materials") or []
        items = [{"code": m["code"], "form": "original" if m.get("original") else "copy"} for m in materials]
        originals = [i for i in items if i["form"] == "original"]
        if proxy:
            t = rng.after(t, 1, 30)
            got = [m["code"] for m in materials]
            event(assignee, t, "custody", "上门收取材料：" + "、".join(m["name_zh"] for m in materials[:4])
                  + ("，原件已登记保管" if originals else "")
                  + (f"，{ctx['who']}已在委托书上签字按手印。" if "proxy_authorisation" in got else "。"),
                  data={"action": "received", "items": items}, for_resident_id=person.id)
        waits = final == "waiting_materials" or final in ("closed", "resolved") and proxy and rng.random() < 0.15
        if waits:
            missing = next((m for m in materials if not m.get("original")), None)
            what = missing["name_zh"] if missing else "相关证明材料"
            t = move(assignee, rng.after(t, 4, 48), "waiting_materials", f"材料不齐：还缺{what}，已告知家属尽快补交。")
            if final == "waiting_materials":
                return self.fit(p)
            t = move(assignee, rng.after(t, 48, 200), "in_progress", "材料已补齐，继续办理。")
        if rng.random() < 0.3:
            t = event(assignee, rng.after(t, 4, 72), "note", rng.choice(
                ("已跟村两委商量过办理方案。", "已电话告知群众办理进度。", "今天又去现场看了一次，情况已掌握。",
                 "已与镇里相关科室对接。")))
        escalates = final == "escalated" or final == "closed" and not proxy and (
            category in ("dispute.historical", "proxy.petition") or rng.random() < 0.05)
        if escalates:
            level = str(cat["lowest_level"])
            t = move(assignee, rng.after(t, 24, 120), "escalated",
                     "村里协调不了，需要镇里出面，申请上报。" if level == "village"
                     else "涉及区级部门职能，镇里协调不了，申请上报区里。")
            if final == "escalated":
                return self.fit(p)
            up = "town" if level == "village" else "county"
            new_deadline = _add_workdays(t.date() + timedelta(days=1), 20)
            t = rng.after(t, 4, 48)
            ops = [Op("update", {"level": up, "assignee_id": self.user_ids[HANDLER[0]],
                                 "deadline": new_deadline.isoformat()})]
            move(staff, t, "assigned", f"已上报{LEVEL_ZH[up]}级，派{HANDLER[1]}牵头协调。", ops,
                 for_user_id=self.user_ids[HANDLER[0]])
            assignee = HANDLER[0]
            t = move(assignee, rng.after(t, 1, 24), "in_progress", "已接单，组织相关部门和当事人现场协调。")
        if final == "in_progress":
            return self.fit(p)
        done = rng.choice(TEXTS[category]["done"]).format(**ctx)
        if proxy:
            t = rng.after(t, 4, 72)
            if items:
                event(assignee, t, "custody", "材料交窗口。", data={"action": "handed_to_window", "items": items},
                      for_resident_id=person.id)
            t = event(assignee, t + timedelta(minutes=5), "step", "材料已送到章水镇便民服务中心窗口办理。",
                      step="submitted_to_window", data={"window": "章水镇便民服务中心"})
            t = event(assignee, rng.after(t, 24, 120), "step", "办理结果已从窗口取回。", step="result_obtained")
            if originals:
                event(assignee, t + timedelta(minutes=2), "custody", "原件从窗口取回。",
                      data={"action": "back_from_window", "items": originals}, for_resident_id=person.id)
            t = rng.after(t, 1, 24)
            if originals:
                event(assignee, t, "custody", f"原件已送还{ctx['who']}本人，当面签收。",
                      data={"action": "returned", "items": originals}, for_resident_id=person.id)
            sig = self.blob(rng.randint(1, 10 ** 9))
            t = t + timedelta(minutes=rng.randint(2, 20))
            p.steps.append(Step(assignee, t, [Op("event", {
                "matter_id": p.id, "kind": "step", "step": "delivered", "from": status, "to": "resolved",
                "note": done, "for_resident_id": person.id, "data": {"signature": sig}, "attachments": [sig]},
                rng.uuid())]))
            status = "resolved"
        else:
            t = move(assignee, rng.after(t, 2, 24 * 8), "resolved", done)
        if final == "resolved":
            return self.fit(p)
        if final == "reopened" or final == "closed" and rng.random() < 0.04:
            t = move(staff, rng.after(t, 4, 72), "reopened", f"回访时{ctx['who']}反映问题没有彻底解决，退回重新办理。")
            if final == "reopened":
                return self.fit(p)
            t = move(assignee, rng.after(t, 1, 24), "in_progress", "已重新接单，再次上门处理。")
            t = move(assignee, rng.after(t, 24, 120), "resolved", "已按群众意见重新处理到位。")
        if rng.random() < 0.7:
            rating = rng.weighted([5, 4, 3], [70, 24, 6])
            # a sensitive matter (信访) is seen by its handling chain only: the town calls back
            t = event(staff if cat.get("sensitive") else h.worker, rng.after(t, 2, 96), "feedback",
                      f"电话回访{ctx['who']}，" + ("对办理结果很满意。" if rating == 5 else "表示满意。" if rating == 4
                                                else "表示基本满意，希望以后能快一点。"),
                      data={"satisfaction": "satisfied" if rating >= 4 else "basically_satisfied", "rating": rating,
                            **({"comment": "希望以后能快一点。"} if rating == 3 else {})})
        move(staff, rng.after(t, 4, 96), "closed", "经回访核实，群众满意，予以销号。")
        return self.fit(p)

    def fit(self, p: Plan) -> Plan:
        """An open matter's story must end before the demo's today: squeeze it if it runs over."""
        first, last = p.steps[0].at, p.steps[-1].at
        limit = END - timedelta(minutes=30)
        if last > limit:
            span = (last - first).total_seconds() or 1.0
            room = max((limit - first).total_seconds(), 60.0 * len(p.steps))
            for i, s in enumerate(p.steps):
                s.at = first + timedelta(seconds=(s.at - first).total_seconds() * room / span + i)
        return p

    def duplicate(self, original: Plan) -> Plan:
        rng = self.rng
        same_village = [h for h in self.houses if h.village.key == original.house.village.key
                        and h is not original.house]
        h = rng.choice(same_village)
        create = original.steps[0].ops[0].fields
        raised = rng.after(original.steps[0].at, 3, 72)
        p = Plan(rng.uuid(), h, "merged_duplicate", category=original.category)
        person = self.concerned(h, None)
        fields = {"household_id": h.id, "resident_id": person.id, "category": None, "title": create["title"],
                  "description": f"{self.who(person)}打电话来反映：" + str(create["description"]),
                  "channel": "village_hotline", "handling_mode": "direct", "urgency": create["urgency"],
                  "raised_at": _iso(raised)}
        p.steps.append(Step(h.worker, raised + timedelta(minutes=rng.randint(2, 20)), [Op("create", fields)]))
        t = rng.after(raised, 1, 24)
        note = f"与{original.steps[0].at:%m月%d日}{original.house.hamlet}群众反映的问题相同，合并到原事项办理。"
        p.steps.append(Step(STAFF1[0], t, [
            Op("update", {"duplicate_of": original.id}),
            Op("event", {"matter_id": p.id, "kind": "status", "from": "submitted", "to": "merged_duplicate",
                         "note": note}, rng.uuid())]))
        return p

    def supervise(self, p: Plan) -> None:
        """督办 by the centre: after acceptance, before the story's next step (or after its end, if open)."""
        rng = self.rng
        accepted = next((i for i, s in enumerate(p.steps) if any(
            o.kind == "event" and o.fields.get("to") == "accepted" for o in s.ops)), None)
        if accepted is None:
            return
        if accepted + 1 < len(p.steps) and p.final == "closed":
            a, b = p.steps[accepted].at, p.steps[accepted + 1].at
            at = a + (b - a) / 2
        else:
            at = min(p.steps[-1].at + timedelta(days=rng.uniform(1, 10)), END - timedelta(minutes=10))
            if at <= p.steps[-1].at:
                at = p.steps[-1].at + timedelta(seconds=30)
        note = rng.choice(SUPERVISION_NOTES)
        step = Step(STAFF1[0], at, [Op("update", {"supervised": True, "supervision_note": note}),
                                    Op("event", {"matter_id": p.id, "kind": "supervise", "note": note}, rng.uuid())])
        p.steps.append(step)
        p.steps.sort(key=lambda s: s.at)
        p.supervised = True

    def run_stories(self, plans: list[Plan]) -> None:
        """Play the stories in rounds: round r is every matter's r-th step, one push per user per round.

        Steps of one matter stay in order; steps of different matters do not depend on each other,
        so a round can batch them by user as phones would batch their outboxes.
        """
        for r in range(max(len(p.steps) for p in plans)):
            by_user: dict[str, list[MutationIn]] = {}
            for p in plans:
                if r >= len(p.steps):
                    continue
                step = p.steps[r]
                out = by_user.setdefault(step.who, [])
                for op in step.ops:
                    if op.kind == "create":
                        out.append(self.mutation("matters", p.id, op.fields, step.at))
                    elif op.kind == "update":
                        rec = self.store.get("matters", p.id)
                        assert rec is not None
                        out.append(self.mutation("matters", p.id, op.fields, step.at, base=rec.version))
                    else:
                        out.append(self.mutation("matter_events", str(op.id), op.fields, step.at))
            for who in sorted(by_user):
                self.push(who, by_user[who])

    # -- the collisions every real deployment has --------------------------------------------------
    def collide(self) -> None:
        rng = self.rng
        g1 = [h for h in self.houses if h.grid.village.key == "zhangxi" and h.grid.number == 1
              and h.worker == "worker1"]
        a, b = g1[3], g1[7]
        # worker1 and worker2 both update a phone number from the same (stale) copy.
        base = self.version("households", a.id)
        d1 = END - timedelta(days=2)
        self.push("worker1", [self.mutation("households", a.id, {"phone": rng.mobile()},
                                            d1.replace(hour=10, minute=5), base)])
        self.push("worker2", [self.mutation("households", a.id, {"phone": rng.mobile()},
                                            d1.replace(hour=15, minute=20), base)], expect=("conflict",))
        # Both rewrite the notes; worker1's edit was made earlier, offline, and arrives last.
        base = self.version("households", b.id)
        d2 = END - timedelta(days=4)
        self.push("worker2", [self.mutation("households", b.id, {"notes": b.notes + "老人上月住院，现已出院，由女儿照顾。"},
                                            d2.replace(hour=14, minute=40), base)])
        self.push("worker1", [self.mutation("households", b.id, {"notes": b.notes + "老人腿摔伤了，近期行动不便，需重点关注。"},
                                            d2.replace(hour=9, minute=15), base)], expect=("conflict",))
        # A status race: staff escalate the overdue proxy matter while agent1, offline, had finished it.
        m = self.contested
        day = END - timedelta(days=1)
        self.push("staff1", [self.mutation("matter_events", rng.uuid(), {
            "matter_id": m.id, "kind": "status", "from": "in_progress", "to": "escalated",
            "note": "代办超过时限仍未办结，上报镇里协调。"}, day.replace(hour=9, minute=30))])
        self.push("agent1", [self.mutation("matter_events", rng.uuid(), {
            "matter_id": m.id, "kind": "status", "from": "in_progress", "to": "resolved",
            "note": "药已配好送到老人家里，社保卡和病历本已还。"}, day.replace(hour=8, minute=40))], expect=("conflict",))
        # worker3 (李家坑村) tries to fix a 杖锡村 household they cannot write: refused, and kept visible.
        c = g1[11]
        self.push("worker3", [self.mutation("households", c.id, {"phone": rng.mobile()},
                                            day.replace(hour=16, minute=0), self.version("households", c.id))],
                  expect=("rejected",))

    def version(self, coll: str, rid: str) -> int:
        rec = self.store.get(coll, rid)
        assert rec is not None
        return rec.version


COUNTED = ("areas", "categories", "users", "households", "residents", "visits", "matters", "matter_events",
           "conflicts")


def _beside(db: str) -> str:
    """Where the server keeps files beside a database by default (``Settings.local_base``)."""
    from .settings import Settings
    return Settings(db=re.sub(r"\.seeding$", "", db)).local_base


def seed(store: SQLiteStore, seed_value: int = 20261123, blob_dir: str | BlobBytes | None = None) -> dict[str, int]:
    """Seed the demo town into a migrated, empty database; return the record count per collection.

    The signatures of the proxy stories go to ``blob_dir``, a directory or a byte storage (default:
    the server's default, ``<db>.blobs`` beside the database, the ``.seeding`` suffix of the CLI's
    temporary copy removed).

    Accounts (password ``demo``): worker1 and worker2 (杖锡村第一网格), worker3 (李家坑村第一网格),
    agent1 (杖锡村's proxy agent), staff1 (章水镇), admin; every other grid has its own worker.
    """
    from sync.errors import SyncError

    if store.user_by_username("worker1") is not None:
        raise SyncError("invalid_request", "this database already holds the demo town")
    install_catalogue(store)
    s = _Seeder(store, seed_value)
    s.build_areas_and_users(accounts.hash_password(PASSWORD))   # one scrypt hash for every demo account
    s.build_households()
    s.push_households()
    s.build_visits()
    s.push_visits()
    s.run_stories(s.build_matters())
    s.collide()
    if store.path != ":memory:":
        s.write_blobs(blob_dir or _beside(store.path) + ".blobs")
    return {c: store.live_count(c) for c in COUNTED}
