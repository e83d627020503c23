"""Demo data for a first look (`make run` loads it once): departments, users, staff and a year of
hospital life, so that every journey of the README can be walked straight away.

Everything goes through the real services and the HIS intake (`import_rows`) with past `now=`
times, so it is audited like real use. A fixed seed makes the data the same on every load.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from qcflow.auth import services
from qcflow.auth.models import Department
from qcflow.core.actors import Actor
from qcflow.core.periods import add_months
from qcflow.extensions import db

DEMO_DEPARTMENTS = [
    # code, name, English name, kind
    ("QC", "质控办", "Quality Control Office", "functional"),
    ("MED", "医务科", "Medical Affairs", "functional"),
    ("NUR", "护理部", "Nursing Department", "functional"),
    ("PHA", "药剂科", "Pharmacy", "functional"),
    ("EQP", "设备科", "Medical Equipment", "functional"),
    ("INF", "院感科", "Infection Control", "functional"),
    ("GS", "普通外科", "General Surgery", "clinical"),
    ("ORTH", "骨科", "Orthopaedics", "clinical"),
    ("CARD", "心内科", "Cardiology", "clinical"),
    ("ONC", "肿瘤科", "Oncology", "clinical"),
    ("ANES", "麻醉科", "Anaesthesiology", "clinical"),
    ("DSC", "日间手术中心", "Day Surgery Centre", "clinical"),
    ("FUC", "随访中心", "Follow-up Centre", "nursing"),
    ("ICU", "重症医学科", "Intensive Care Unit", "clinical"),
]

DEMO_USERS = [
    # user name, password, roles, department, display name
    ("doctor", "demo-doctor-2025", ["clinician"], "GS", "张医生"),
    ("nurse", "demo-nurse-2025", ["nurse"], "GS", "李护士"),
    ("head", "demo-head-2025", ["dept_head", "clinician"], "GS", "王主任"),
    ("quality", "demo-quality-2025", ["quality"], "QC", "赵质控"),
    ("quality2", "demo-quality2-2025", ["quality"], "QC", "钱质控"),
    ("admin", "demo-admin-2025", ["admin"], "QC", "系统管理员"),
    ("anes", "demo-anes-2025", ["clinician"], "ANES", "孙麻醉"),
    ("cardio", "demo-cardio-2025", ["clinician"], "CARD", "钱心内"),
]

#: The HIS's reference data: procedures, staff (some without a login) and surgeons' authorisations.
DEMO_PROCEDURES = [
    {"code": "52.7001", "name": "胰十二指肠切除术", "grade": 4},
    {"code": "43.7001", "name": "腹腔镜根治性远端胃大部切除术", "grade": 4},
    {"code": "51.2301", "name": "腹腔镜胆囊切除术", "grade": 3},
    {"code": "54.1101", "name": "剖腹探查止血术", "grade": 3},
    {"code": "53.0201", "name": "腹股沟疝修补术", "grade": 2, "is_day_surgery_allowed": True},
]
DEMO_STAFF = [
    {"his_id": "DEMO-S1", "name": "王主任", "department_code": "GS", "specialty": "general_surgery", "username": "head"},
    {"his_id": "DEMO-S2", "name": "孙麻醉", "department_code": "ANES", "specialty": "anaesthesia", "username": "anes"},
    {"his_id": "DEMO-S3", "name": "钱心内", "department_code": "CARD", "specialty": "cardiology", "username": "cardio"},
    {"his_id": "DEMO-S4", "name": "周骨科", "department_code": "ORTH", "specialty": "orthopaedics"},
    {"his_id": "DEMO-S5", "name": "吴肿瘤", "department_code": "ONC", "specialty": "oncology"},
]

#: Kinds of report seen over a year: category, subcategory, care stage, reporter's grade, department
#: where it happened, place, description.
EVENT_KINDS = [
    ("fall", "fall_inpatient", "nursing", "III", "ORTH", "骨科 7 病区", "患者夜间自行下床如厕时跌倒，臀部着地，查体未见骨折。"),
    ("fall", "fall_from_bed", "nursing", "III", "CARD", "心内科 CCU", "患者躁动，床栏未拉起，坠床致额部皮肤擦伤，已清创。"),
    ("medication", "omission", "medication", "III", "GS", "普外科 5 病区", "交接班遗漏一次口服降压药，次日晨测血压偏高，已补服。"),
    ("medication", "wrong_route_time", "medication", "IV", "ONC", "肿瘤科治疗室",
     "化疗前预处理药物给药时间推迟 1 小时，核对时发现，已按医嘱补给后再开始化疗。"),
    ("medication", "adverse_reaction", "medication", "III", "CARD", "心内科 6 病区",
     "头孢类抗生素输注后出现全身皮疹，立即停药并予抗过敏处理后好转。"),
    ("pressure_injury", None, "nursing", "III", "ORTH", "骨科 8 病区", "长期卧床患者骶尾部发现 2 期压力性损伤，已加强翻身与减压。"),
    ("tube_dislodgement", None, "nursing", "III", "GS", "普外科 5 病区", "患者睡眠中自行拔除胃管，已重新置管，未发生误吸。"),
    ("device", "device_malfunction", "surgery_anaesthesia", "IV", "GS", "手术室 5 号间",
     "术中高频电刀主机报警停机，更换备用主机后继续手术，未延误手术。"),
    ("diagnosis_lab_imaging", "specimen_error", "examination", "IV", "CARD", "检验科标本接收处",
     "血标本试管标签与申请单不符，接收核对时发现，已重新采血。"),
    ("identification", None, "medication", "IV", "DSC", "日间手术中心", "输液前核对发现输液卡床号与腕带不符，及时更正，未输注。"),
    ("infection", None, "nursing", "III", "ORTH", "骨科 7 病区", "术后切口浅表感染，分泌物培养为金黄色葡萄球菌，已换药并抗感染治疗。"),
    ("anaesthesia", None, "surgery_anaesthesia", "III", "ANES", "麻醉恢复室", "全麻苏醒期患者出现低氧血症，经面罩加压给氧后恢复。"),
    ("transfusion", "transfusion_reaction", "transfusion", "III", "ONC", "肿瘤科 9 病区",
     "输注红细胞悬液 20 分钟后出现寒战、发热，立即停止输血并通知输血科。"),
    ("communication", None, "outpatient", "IV", "CARD", "门诊二楼心内科诊室", "家属对检查结果告知的时间有异议，经科室沟通后理解。"),
    ("nursing_care", None, "nursing", "III", "CARD", "心内科 6 病区", "患者入院时跌倒风险评估漏评，次日补评为高风险并落实防护措施。"),
    ("treatment_procedure", None, "examination", "III", "GS", "内镜中心", "胃镜活检后患者咽部少量出血，局部处理后停止。"),
    ("facility", None, "other", "IV", "ONC", "住院部三楼走廊", "走廊顶灯故障致夜间照明不足，已报修更换。"),
]
#: Grade-4 operations (days ago) whose patient died on the ward: (days after the operation, the death review
#: held and signed this many days after the death, or None: still to hold).
DEATHS = {200: (6, 4), 18: (15, None)}
#: Who handles a category (the category's default department).
HANDLERS = {"medication": "PHA", "fall": "NUR", "pressure_injury": "NUR", "tube_dislodgement": "NUR", "device": "EQP",
            "infection": "INF", "identification": "NUR", "nursing_care": "NUR"}
#: Reports per month over the last year, oldest first (this month so far last).
MONTHLY_REPORTS = [6, 7, 9, 8, 10, 7, 8, 9, 11, 8, 7, 3]
#: Corrective actions by kind of improvement (title, evidence of completion), for cases investigated in full.
ACTIONS = {
    "training": ("全科室开展专项培训并考核", "培训签到表与考核记录已归档"),
    "rule_update": ("修订相关核对制度并下发", "新版制度已下发，科室已组织学习"),
    "system_change": ("信息系统增加核对提醒", "提醒功能已上线，测试记录已归档"),
}


#: Lessons of the case library written from closed demo cases, by category: title, what happened, why, what changed.
LESSONS = {
    "fall": ("术后首次下床未呼叫护士致跌倒",
             "老年患者术后首次下床如厕，未呼叫护士，在床旁跌倒，臀部着地，查体未见骨折。",
             "跌倒风险评估后未向患者及陪护讲清首次下床须有人陪同；夜间病房照明不足，呼叫器不在手边。",
             "术后首次下床一律由护士陪同并床头挂牌提示；夜间保留地灯；呼叫器固定在患者手边，交班时核对。"),
    "medication": ("交接班遗漏口服药",
                   "交接班时遗漏一次口服降压药，次日晨测血压偏高，补服后恢复。",
                   "口头交接未逐项核对服药单，临时医嘱与长期医嘱分开打印，容易漏看。",
                   "交接班使用电子服药核对单逐项签名；临时与长期口服药合并显示；每月抽查交接记录。"),
    "tube_dislodgement": ("睡眠中自行拔除胃管",
                          "术后患者睡眠中自行拔除胃管，重新置管，未发生误吸。",
                          "置管后未评估非计划拔管风险，固定方法单一，夜间巡视间隔较长。",
                          "置管后即评估拔管风险并记录；高风险患者使用双固定并加强夜间巡视；必要时经医生评估后使用保护性约束。"),
    "pressure_injury": ("长期卧床患者发生压力性损伤",
                        "长期卧床患者骶尾部发现 2 期压力性损伤，加强翻身与减压后好转。",
                        "入院评估分值偏高但未及时使用减压床垫，翻身记录不连续。",
                        "高风险患者入院当日配置减压床垫；翻身由信息系统定时提醒并记录；护士长每周检查。"),
}


SURNAMES = "赵钱孙周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张孔曹严华金魏陶姜"
GIVEN_NAMES = ["志刚", "玉兰", "伟", "桂芳", "海涛", "淑珍", "建军", "秀芝", "志强", "美玲", "国平", "秀兰", "浩",
               "金凤", "家明", "红梅", "德胜", "雪梅", "立新", "春花", "振华", "桂英", "宏伟", "凤英", "永康", "素梅",
               "建国", "玉珍", "长青", "淑英", "文斌", "彩霞", "光明"]


def patient_name(number: int) -> str:
    """A made-up patient name, different for every demo patient number below 330."""
    return SURNAMES[number % len(SURNAMES)] + GIVEN_NAMES[number * 7 % len(GIVEN_NAMES)]


@dataclass
class DemoData:
    """What the loader made that a reader may want to use again."""

    #: The receipt code of the anonymous fall report in the inbox (printed by `qcflow demo-data`).
    receipt_code: str
    #: Every anonymous report's receipt code by event id (receipt codes are only stored hashed).
    receipt_codes: dict[int, str] = field(default_factory=dict)


def load_demo_data(*, now: datetime) -> str | None:
    """Create the demo data unless it exists; returns the inbox's anonymous report's receipt code, else None."""
    demo = load_demo(now=now)
    return demo.receipt_code if demo else None


def load_demo(*, now: datetime) -> DemoData | None:
    """Create the demo departments, users, reference data, a year of reports, operations, discussions
    and follow-up calls, and the cases of today, unless the demo departments exist."""
    if db.session.scalar(sa.select(Department.id).where(Department.code == "QC")) is not None:
        return None
    actor = Actor.system("demo-data")
    departments = {
        code: services.create_department(code, name, kind, actor=actor, now=now, name_en=name_en)
        for code, name, name_en, kind in DEMO_DEPARTMENTS
    }
    users = {
        username: services.create_user(username, password, roles, departments[dept], actor=actor, now=now,
                                       display_name=display_name)
        for username, password, roles, dept, display_name in DEMO_USERS
    }
    demo = Demo(departments, users, now)
    # Today's inbox first: its named reports take the first ids, which the browser journeys start from.
    data = demo.inbox_reports()
    demo.reference_data()
    demo.year_of_reports()
    demo.cases_in_every_state(data)
    demo.public_reports(data)
    demo.attachments(data)
    demo.lessons()
    demo.year_of_operations_and_calls()
    demo.cancer_survival_history()
    demo.mdt_clinics()
    demo.planned_operations()
    demo.calls_due_today()
    demo.triggers_found()
    demo.read_old_notifications()
    load_demo_census(now)
    load_demo_reported_values(users, departments, now)
    return data


class Demo:
    """The demo hospital's year, built step by step through the services."""

    def __init__(self, departments, users, now: datetime):
        from qcflow.core.time import local

        self.departments, self.users, self.now = departments, users, now
        self.tz = local(now).tzinfo
        self.today = local(now).date()
        self.random = random.Random(17)
        self.his = Actor.system("demo-data")
        self.quality = Actor.for_user(users["quality"])
        self.head = Actor.for_user(users["head"])
        self.nurse = Actor.for_user(users["nurse"])
        #: HIS ids of patients whose calls the year's loop handles (not today's demo calls).
        self.history_patients: set[str] = set()
        self.outcomes: dict[str, str] = {}

    def at(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.tz)

    def days_ago(self, days: int, hour: int, minute: int = 0) -> datetime:
        return self.at(self.today - timedelta(days=days), hour, minute)

    def dept(self, code: str) -> int:
        return self.departments[code].id

    def intake(self, kind: str, rows: list[dict], now: datetime) -> None:
        from qcflow.clinical.services import import_rows

        import_rows(kind, rows, actor=self.his, now=now, strict=True)

    # --- adverse events ---------------------------------------------------------------------------

    def report(self, kind, occurred_at: datetime, **extra) -> dict:
        category, subcategory, stage, grade, dept, place, text = kind
        data = {"category_code": category, "reporter_grade": grade, "care_stage": stage, "occurred_at": occurred_at,
                "discovered_at": occurred_at + timedelta(minutes=40), "location": place,
                "department_id": self.dept(dept), "description": text}
        if subcategory:
            data["subcategory_code"] = subcategory
        return {**data, **extra}

    def file(self, data: dict, *, by: str | None, mode: str = "named", hours_later: float = 2):
        from qcflow.events.services import file_report

        actor = Actor.anonymous() if mode == "anonymous" else Actor.for_user(self.users[by])
        return file_report(data, mode=mode, actor=actor, now=data["discovered_at"] + timedelta(hours=hours_later))

    def step(self, event, action: str, at: datetime, **data):
        from qcflow.events.services import transition_event

        return transition_event(event, action, data, actor=self.quality, now=at)

    def triage(self, event, at: datetime, grade: str | None = None, harm: str = "none") -> None:
        handler = HANDLERS.get(event.category_code, "MED")
        self.step(event, "triage", at, confirmed_grade=grade or event.reporter_grade,
                  handling_department_id=self.dept(handler), external_severity="none", harm=harm)

    def add_actions(self, event, at: datetime, kinds: list[str]) -> list:
        from qcflow.events.services import add_action

        owner = HANDLERS.get(event.category_code, "MED")
        return [add_action(event, {"title": ACTIONS[kind][0], "improvement_type": kind,
                                   "owner_department_id": self.dept(owner),
                                   "due_on": (at + timedelta(days=21)).date()}, actor=self.quality, now=at)
                for kind in kinds]

    def finish_actions(self, actions, done_at: datetime, verified_at: datetime | None) -> None:
        from qcflow.events.services import transition_action

        for action in actions:
            evidence = ACTIONS[action.improvement_type][1]
            transition_action(action, "complete", {"evidence": evidence}, actor=self.quality, now=done_at)
            if verified_at is not None:
                transition_action(action, "verify", {}, actor=self.quality, now=verified_at)

    def investigate(self, event, start: datetime, kinds: list[str], *, until: str = "closed") -> None:
        """Investigate a triaged case with corrective actions, as far as `until`."""
        self.step(event, "start_investigation", start)
        actions = self.add_actions(event, start + timedelta(days=2), kinds)
        self.step(event, "plan_actions", start + timedelta(days=3), rca_cause_domains=["process", "practice"],
                  rca_factors="相关环节核对流程执行不到位，高风险环节缺少提醒。",
                  analysis="根本原因分析：流程缺少双人核对节点，新入职人员培训不足。")
        if until == "actions_open":
            self.finish_actions(actions[:1], start + timedelta(days=5), None)
            return
        self.finish_actions(actions, start + timedelta(days=10), start + timedelta(days=12))
        self.step(event, "verify", start + timedelta(days=13))
        if until == "verifying":
            return
        self.step(event, "close", start + timedelta(days=15), improvement_types=kinds,
                  feedback="感谢上报。科室已完成整改并经质控办验证，相关制度已更新。")

    def public_reports(self, data: DemoData) -> None:
        """Reports from patients and families (the ward posters' form): a daughter's report of her father's fall
        this morning, with her contact, waiting for triage; a patient's report of three weeks ago, answered."""
        from qcflow.events.services import file_public_report

        fall, code = file_public_report({
            "public_role": "family", "department_id": self.dept("GS"), "occurred_at": self.now - timedelta(hours=9),
            "location": "5病区 12 床卫生间", "harm": "mild", "contact_name": "陈女士", "contact_phone": "13800001234",
            "description": "我父亲夜里自己去卫生间，地面有水，滑倒后膝盖擦伤。呼叫铃离马桶太远，按不到。",
            "immediate_actions": "护士很快来了，给伤口消毒包扎，医生查看后说没有骨折。"}, now=self.now - timedelta(hours=7))
        data.receipt_codes[fall.id] = code
        at = self.days_ago(22, 15)
        pills, code = file_public_report({
            "public_role": "patient", "department_id": self.dept("CARD"), "occurred_at": at,
            "location": "心内科 3 病区", "harm": "none",
            "description": "护士发给我的药杯里有一片药和平时不一样，我问了以后护士核对，发现是隔壁床的药，没有吃。"},
            now=at + timedelta(hours=2))
        data.receipt_codes[pills.id] = code
        self.step(pills, "triage", at + timedelta(hours=20), confirmed_grade="IV", category_code="medication",
                  care_stage="medication", handling_department_id=self.dept("PHA"), external_severity="none",
                  harm="none")
        self.step(pills, "close", at + timedelta(days=6), analysis="发药前未执行双人核对与床旁扫码核对患者身份。",
                  feedback="谢谢您及时提出疑问。病区已恢复发药前床旁扫码核对，并对护士进行了培训。",
                  improvement_types=["training"])

    def attachments(self, data: DemoData) -> None:
        """Files on cases: the anonymous reporter's photo of the wet floor (listed on the receipt page) and the
        quality office's photo of a device label on a case under investigation (thumbnails on the case page)."""
        import io

        from PIL import Image, ImageDraw

        from qcflow.events.models import AdverseEvent
        from qcflow.files.services import Upload, attach

        def photo(colour: str, lines: list[str]) -> bytes:
            image = Image.new("RGB", (640, 480), colour)
            draw = ImageDraw.Draw(image)
            for number, line in enumerate(lines):
                draw.text((40, 60 + 50 * number), line, fill="black", font_size=32)
            out = io.BytesIO()
            image.save(out, "JPEG", quality=85)
            return out.getvalue()

        floor = db.session.get(AdverseEvent, next(iter(data.receipt_codes)))
        attach("adverse_event", floor.id, Upload(photo("#cfd8dc", ["WARD 5  CORRIDOR", "WET FLOOR, NO SIGN"])),
               stage=floor.state, actor=Actor.anonymous(), now=floor.created_at, anonymous=True, from_reporter=True)
        case = db.session.scalar(sa.select(AdverseEvent).where(AdverseEvent.state == "investigating")
                                 .order_by(AdverseEvent.id))
        if case is not None:
            attach("adverse_event", case.id, Upload(photo("#fff8e1", ["INFUSION PUMP  XZ-200", "SN 2024-0417-0093",
                                                                      "SERVICE DUE 2026-09"]), "pump-label.jpg"),
                   stage=case.state, actor=self.quality, now=case.triaged_at + timedelta(hours=3))

    def lessons(self) -> None:
        """Lessons of the case library from recent closed cases: written and sent for review by the quality
        office, published by its second member (four eyes), in the last months."""
        from qcflow.events.lessons import services as lessons
        from qcflow.events.models import AdverseEvent

        quality2 = Actor.for_user(self.users["quality2"])
        closed = db.session.scalars(sa.select(AdverseEvent).where(
            AdverseEvent.state == "closed", AdverseEvent.category_code.in_(list(LESSONS)))
            .order_by(AdverseEvent.closed_at.desc(), AdverseEvent.id))
        chosen = {}
        for event in closed:
            chosen.setdefault(event.category_code, event)
        for event in list(chosen.values())[:3]:
            title, happened, why, changed = LESSONS[event.category_code]
            written = min(event.closed_at + timedelta(days=2), self.now - timedelta(days=1))
            lesson = lessons.write(event, {"title": title, "what_happened": happened, "why": why,
                                           "what_changed": changed}, actor=self.quality, now=written)
            lessons.transition(lesson, "submit_review", {}, actor=self.quality, now=written + timedelta(hours=1))
            lessons.transition(lesson, "publish", {"checked": True}, actor=quality2,
                               now=min(written + timedelta(days=1), self.now - timedelta(hours=2)))

    def inbox_reports(self) -> DemoData:
        """Today's inbox: an anonymous fall, a named medication near miss and a confidential reoperation."""
        now = self.now
        fall = self.report(EVENT_KINDS[0], now - timedelta(hours=20), location="5病区走廊", department_id=self.dept("GS"),
                           subcategory_code="fall_inpatient", reporter_grade="IV",
                           description="夜间患者如厕时险些滑倒，地面有水渍，被护工及时扶住。")
        event, code = self.file(fall, by=None, mode="anonymous", hours_later=18)
        data = DemoData(receipt_code=code, receipt_codes={event.id: code})
        self.file(self.report(("medication", "wrong_dose", "medication", "III", "GS", "5病区治疗室",
                               "配药时发现胰岛素剂量多抽了 4 单位，双人核对时发现，未给患者使用。"),
                              now - timedelta(hours=30), ncc_merp="B"), by="doctor", hours_later=28)
        self.file(self.report(("surgery", "unplanned_reoperation", "surgery_anaesthesia", "II", "GS", "手术室 3 号间",
                               "腹腔镜胆囊切除术后第 1 天出现活动性出血，返回手术室止血。"),
                              now - timedelta(hours=48), is_unplanned_reoperation=True),
                  by="head", mode="confidential", hours_later=46)
        return data

    def year_of_reports(self) -> None:
        """About a hundred reports over twelve months, nearly all handled: most grade III/IV cases closed
        from triage, every fourth investigated with corrective actions, a few rejected."""
        reporters = ["nurse", "head", "anes", "cardio", "nurse", "head"]
        first_month = self.today.replace(day=1)
        number = 0
        for back, count in zip(range(11, -1, -1), MONTHLY_REPORTS):
            month = add_months(first_month, -back)
            for _ in range(count):
                number += 1
                day = month + timedelta(days=self.random.randrange(28))
                if (self.today - day).days < 45:
                    continue  # the recent weeks hold the cases in every state (cases_in_every_state)
                kind = EVENT_KINDS[self.random.randrange(len(EVENT_KINDS))]
                occurred = self.at(day, self.random.choice([2, 9, 11, 15, 20, 23]), self.random.randrange(60))
                extra = {"wants_feedback": (self.today - day).days < 90}
                if kind[0] == "medication":
                    extra["ncc_merp"] = self.random.choice(["B", "C", "D"])
                event, _code = self.file(self.report(kind, occurred, **extra), by=reporters[number % len(reporters)],
                                         mode="confidential" if number % 9 == 0 else "named")
                triaged = event.submitted_at + timedelta(hours=self.random.choice([3, 6, 20, 30]))
                if number % 13 == 0:
                    self.step(event, "reject", triaged, reason="经核实为患者自行外出期间发生，不属于院内医疗质量安全事件。")
                    continue
                self.triage(event, triaged, grade="III" if kind[3] == "III" else "IV",
                            harm="mild" if kind[3] == "III" else "none")
                if number % 4 == 0:
                    self.investigate(event, triaged + timedelta(days=1), ["training", "rule_update"][: 1 + number % 2])
                else:
                    late = number % 10 == 3  # a few cases closed late, so the on-time rate is not 100 %
                    self.step(event, "close", triaged + timedelta(days=40 if late else self.random.choice([1, 3, 6])),
                              analysis="科室已组织讨论，明确原因并落实改进。", feedback="感谢上报，已反馈科室并完成整改。")

    def cases_in_every_state(self, data: DemoData) -> None:
        """Recent cases, one or more in every state of the case workflow."""
        kinds = {kind[0]: kind for kind in EVENT_KINDS}
        # Submitted two days ago, grade II, not triaged: its 12 h triage deadline has passed.
        self.file(self.report(("fall", None, "nursing", "II", "ORTH", "7病区", "患者夜间跌倒，额部擦伤。"),
                              self.now - timedelta(days=2, hours=2)), by="head", hours_later=0.5)
        event, code = self.file(self.report(("identification", None, "examination", "IV", "CARD", "心内科导管室",
                                             "术前核对时发现手术通知单上的住院号与腕带不一致，暂停核实后更正。"),
                                            self.now - timedelta(days=1, hours=5)),
                                by=None, mode="anonymous", hours_later=3)
        data.receipt_codes[event.id] = code
        # Information requested from the reporter.
        event, _ = self.file(self.report(kinds["tube_dislodgement"], self.days_ago(3, 2, 10)), by="nurse")
        self.step(event, "request_info", self.days_ago(2, 10), message="请补充：患者当时是否使用约束，镇静评估结果如何？")
        # Triaged, waiting for the investigation to start.
        pressure, _ = self.file(self.report(kinds["pressure_injury"], self.days_ago(4, 9)), by="nurse")
        self.triage(pressure, self.days_ago(3, 11), grade="III", harm="mild")
        # A second report of the same pressure injury, marked as a duplicate.
        twin, _ = self.file(self.report(kinds["pressure_injury"], self.days_ago(4, 10)), by="head")
        self.step(twin, "mark_duplicate", self.days_ago(3, 11, 30), duplicate_of_id=pressure.id)
        # Under investigation: a fall with a fracture (grade II).
        fall, _ = self.file(self.report(("fall", "fall_inpatient", "nursing", "II", "ORTH", "骨科 8 病区",
                                         "患者术后首次下床未呼叫护士，在床旁跌倒致右腕骨折，已行石膏固定。"),
                                        self.days_ago(10, 6), harm="moderate"), by="nurse")
        self.triage(fall, self.days_ago(10, 14), grade="II", harm="moderate")
        self.step(fall, "start_investigation", self.days_ago(9, 9))
        # Corrective actions open (one done), then one being verified.
        wrong_drug, _ = self.file(self.report(("medication", "wrong_drug", "medication", "III", "CARD", "心内科 6 病区",
                                               "口服药摆药时将阿托伐他汀与阿司匹林肠溶片放错药杯，发药前患者提出疑问，"
                                               "核对后更正，未服用。"), self.days_ago(20, 8), ncc_merp="B"), by="cardio")
        self.triage(wrong_drug, self.days_ago(19, 10))
        self.investigate(wrong_drug, self.days_ago(18, 9), ["rule_update", "system_change"], until="actions_open")
        device, _ = self.file(self.report(kinds["device"], self.days_ago(30, 10)), by="anes")
        self.triage(device, self.days_ago(29, 15))
        self.investigate(device, self.days_ago(28, 9), ["training", "system_change"], until="verifying")
        # Closed after a full investigation, with the improvement types.
        infection, _ = self.file(self.report(kinds["infection"], self.days_ago(42, 11)), by="nurse")
        self.triage(infection, self.days_ago(41, 10))
        self.investigate(infection, self.days_ago(40, 9), ["training", "rule_update"])
        # Not reportable, and one withdrawn by its reporter.
        noise, _ = self.file(self.report(("other", None, "other", "IV", "ONC", "肿瘤科 9 病区",
                                          "夜间病房空调噪音大，患者反映休息不好。"), self.days_ago(6, 22)), by="cardio")
        self.step(noise, "reject", self.days_ago(5, 9), reason="属于后勤服务问题，已转总务科处理，不属于医疗质量安全事件。")
        mistaken, _ = self.file(self.report(kinds["communication"], self.days_ago(2, 15)), by="cardio")
        from qcflow.events.services import transition_event

        transition_event(mistaken, "withdraw", {}, actor=Actor.for_user(self.users["cardio"]), now=self.days_ago(1, 9))
        # A draft the nurse saved and has not sent yet (at /my/reports).
        from qcflow.events.services import file_report

        draft = self.report(kinds["nursing_care"], self.days_ago(1, 20))
        file_report({k: v for k, v in draft.items() if k != "description"}, mode="named",
                    actor=Actor.for_user(self.users["nurse"]), now=self.days_ago(1, 21), submit=False)

    # --- operations, discussions and follow-up calls ------------------------------------------

    def reference_data(self) -> None:
        """Procedures, staff (an orthopaedist and an oncologist without a login) and authorisations."""
        start = (self.today - timedelta(days=800)).isoformat()
        self.intake("procedures", DEMO_PROCEDURES, self.now - timedelta(days=400))
        self.intake("staff", DEMO_STAFF, self.now - timedelta(days=400))
        self.intake("authorisations", [
            {"staff_his_id": "DEMO-S1", "procedure_code": code, "valid_from": start}
            for code in ("52.7001", "43.7001", "51.2301", "54.1101")], self.now - timedelta(days=400))

    def admit(self, number: int, *, name: str, sex: str, born: str, admitted_at: datetime,
              discharged_at: datetime | None = None, day_surgery: bool = False, history: bool = True) -> str:
        """A patient and an encounter in general surgery; returns the encounter's HIS id."""
        patient = f"DEMO-P{number}"
        self.intake("patients", [{"his_id": patient, "mrn": f"BA{250000 + number}", "name": name, "sex": sex,
                                  "birth_on": born, "phone": f"1381234{number:04d}"}], admitted_at)
        encounter = {"his_id": f"DEMO-E{number}", "patient_his_id": patient, "department_code": "GS",
                     "admitted_at": admitted_at.isoformat(), "is_day_surgery": day_surgery}
        if discharged_at is not None:
            encounter.update(discharged_at=discharged_at.isoformat(), disposition="home")
        self.intake("encounters", [encounter], discharged_at or admitted_at)
        if history:
            self.history_patients.add(patient)
        return f"DEMO-E{number}"

    def operation(self, number: int, encounter: str, code: str, planned_at: datetime, imported_at: datetime,
                  prefix: str = "DEMO-O", **extra):
        from qcflow.clinical.models import Operation

        his_id = f"{prefix}{number}"
        self.intake("operations", [{"his_id": his_id, "encounter_his_id": encounter, "procedure_code": code,
                                    "surgeon_his_id": "DEMO-S1", "planned_at": planned_at.isoformat(), **extra}],
                    imported_at)
        return db.session.scalar(sa.select(Operation).where(Operation.his_id == his_id))

    def discussion_of(self, operation, kind: str = "preop_level4"):
        from qcflow.mdt.models import Discussion

        return db.session.scalar(sa.select(Discussion).where(Discussion.operation_id == operation.id,
                                                             Discussion.kind == kind))

    def discuss(self, operation, *, held_at: datetime, kind: str = "preop_level4") -> None:
        """Hold and sign the discussion the operation's import requested, everyone invited attending."""
        discussion = self.discussion_of(operation, kind)
        record = {"chair_user_id": self.users["head"].id,
                  "summary": "患者一般情况可，心肺功能可耐受手术，麻醉评估 ASA II 级。",
                  "conclusion": "具备手术指征，同意按计划实施手术，术后转外科重症监护。", "decision": "proceed"}
        if kind == "case_review":
            record = {"chair_user_id": self.users["head"].id,
                      "summary": "术后第 1 天引流量增多、血红蛋白下降，再次手术见胆囊动脉残端出血。",
                      "conclusion": "原因为胆囊动脉夹闭不牢靠；今后术中常规双重夹闭并在关腹前再次检查创面。"}
        self.hold_and_sign(discussion, held_at=held_at, by=self.head, record=record)

    def hold_and_sign(self, discussion, *, held_at: datetime, by: Actor, record: dict) -> None:
        """Write the record, schedule, hold (everyone invited attending) and sign a discussion."""
        from qcflow.mdt.services import record_attendance, transition_discussion, update_discussion

        update_discussion(discussion, record, actor=by, now=held_at - timedelta(days=1))
        transition_discussion(discussion, "schedule", {"scheduled_at": held_at}, actor=by,
                              now=held_at - timedelta(days=1))
        record_attendance(discussion, [p.id for p in discussion.participants], actor=by, now=held_at)
        transition_discussion(discussion, "hold", {"held_at": held_at}, actor=by, now=held_at + timedelta(hours=1))
        transition_discussion(discussion, "sign", {}, actor=by, now=held_at + timedelta(hours=2))

    def operate(self, operation, performed_at: datetime, **book) -> None:
        from qcflow.clinical.services import transition_operation

        transition_operation(operation, "book", book, actor=self.head, now=performed_at - timedelta(days=2))
        transition_operation(operation, "perform", {"performed_at": performed_at}, actor=self.head,
                             now=performed_at + timedelta(hours=5))

    def year_of_operations_and_calls(self) -> None:
        """A year of general surgery: grade-4 operations after a signed pre-operative discussion (one
        booked under an emergency override), grade-3 operations, day surgery and cancer diagnoses, with
        the follow-up calls the nurse made (most effective, some late, some unreachable) week by week."""
        happenings = []  # (time, what): done in time order, the calls of each week in between
        number = 10
        # Grade-4 operations every two weeks (none whose 30-day or yearly call window is open today).
        for days in range(326, 7, -14):
            if not 22 <= days <= 31:
                number += 1
                code = ("52.7001", "43.7001")[number % 2]
                happenings.append((self.days_ago(days + 9, 9), "level4", (number, days, code)))
        # Grade-3 operations (one followed by an unplanned return to theatre).
        for days in (280, 230, 190, 160, 130, 100, 60, 40, 20):
            number += 1
            happenings.append((self.days_ago(days + 2, 9), "level3", (number, days)))
        # Day surgery about weekly: hernia repairs discharged the same day (none whose 30-day call is open today).
        for days in [*range(358, 1, -6), 3]:
            if 26 <= days <= 30:
                continue
            number += 1
            happenings.append((self.days_ago(days, 7), "day", (number, days)))
        # Cancer diagnoses (the three-monthly calls are not open today).
        for days, cancer, icd10 in ((320, "gastric", "C16.3"), (230, "colorectal", "C18.7"), (140, "gastric", "C16.2"),
                                    (45, "colorectal", "C20"), (322, "lung", "C34.1"), (231, "lung", "C34.3"),
                                    (229, "liver", "C22.0"), (138, "breast", "C50.4"), (321, "breast", "C50.9")):
            number += 1
            happenings.append((self.days_ago(days, 10), "cancer", (number, days, cancer, icd10)))
        happenings.sort(key=lambda h: h[0])
        tick = self.days_ago(365, 23)
        for when, what, args in happenings:
            while tick < when:
                self.work_calls(tick)
                tick += timedelta(days=7)
            getattr(self, f"_{what}")(patient_name(args[0]), *args)
        self.work_calls(self.now)

    def _level4(self, name, number, days, code) -> None:
        born = f"{1950 + number % 20}-0{1 + number % 9}-1{number % 10}"
        encounter = self.admit(number, name=name, sex="MF"[number % 2], born=born,
                               admitted_at=self.days_ago(days + 9, 9))
        operation = self.operation(number, encounter, code, self.days_ago(days, 8, 30), self.days_ago(days + 9, 10))
        if 116 <= days < 130:  # bleeding on the ward: booked without the discussion under an emergency override
            # (performing it withdraws the discussion's request)
            self.operate(operation, self.days_ago(days, 9), emergency_override=True,
                         override_reason="消化道大出血，需急诊手术，来不及组织术前讨论。")
        else:
            self.discuss(operation, held_at=self.days_ago(days + 4, 15))
            self.operate(operation, self.days_ago(days, 9))
        if days in DEATHS:  # died on the ward after the operation: the death review, signed or still to hold
            self.die(number, encounter, admitted_at=self.days_ago(days + 9, 9),
                     died_at=self.days_ago(days - DEATHS[days][0], 4, 20), review_days=DEATHS[days][1])
        elif 88 <= days < 102:
            self.outcomes[f"DEMO-P{number}"] = "complication_dismissed"
        elif number % 6 == 0:
            self.outcomes[f"DEMO-P{number}"] = "unreachable"

    def die(self, number: int, encounter: str, *, admitted_at: datetime, died_at: datetime,
            review_days: int | None) -> None:
        """The HIS reports the patient's death (date of death, discharge as a death), which requests the
        perioperative death review; held and signed `review_days` after the death, or left to hold."""
        from qcflow.clinical.models import Patient
        from qcflow.mdt.models import Discussion

        patient = db.session.scalar(sa.select(Patient).where(Patient.his_id == f"DEMO-P{number}"))
        self.intake("patients", [{"his_id": patient.his_id, "mrn": patient.mrn, "name": patient.name,
                                  "sex": patient.sex, "birth_on": patient.birth_on.isoformat(), "phone": patient.phone,
                                  "died_on": died_at.date().isoformat()}], died_at + timedelta(hours=1))
        self.intake("encounters", [{"his_id": encounter, "patient_his_id": patient.his_id, "department_code": "GS",
                                    "admitted_at": admitted_at.isoformat(), "discharged_at": died_at.isoformat(),
                                    "disposition": "death"}], died_at + timedelta(hours=1))
        if review_days is None:
            return
        review = db.session.scalar(sa.select(Discussion).where(Discussion.patient_id == patient.id,
                                                               Discussion.kind == "perioperative_death"))
        self.hold_and_sign(review, held_at=died_at + timedelta(days=review_days), by=self.quality, record={
            "chair_user_id": self.users["head"].id,
            "summary": "术后第 5 天突发呼吸困难、血氧下降，CT 肺动脉造影提示肺栓塞，抢救无效死亡。",
            "conclusion": "死因为术后肺栓塞；术前血栓风险评估为高危，但未按规范启动药物预防。"
                          "今后高危患者术后 24 小时内启动药物预防，并纳入科室质控检查。"})

    def _level3(self, name, number, days) -> None:
        born = f"{1960 + number % 25}-1{number % 3}-0{1 + number % 9}"
        encounter = self.admit(number, name=name, sex="MF"[number % 2], born=born,
                               admitted_at=self.days_ago(days + 2, 9))
        operation = self.operation(number, encounter, "51.2301", self.days_ago(days, 8), self.days_ago(days + 2, 10))
        self.operate(operation, self.days_ago(days, 9))
        if days == 100:  # bleeding the next day: back to theatre
            reoperation = self.operation(number, encounter, "54.1101", self.days_ago(days - 1, 20),
                                         self.days_ago(days - 1, 19), prefix="DEMO-R", is_unplanned_reoperation=True)
            self.operate(reoperation, self.days_ago(days - 1, 21))
            self.discuss(reoperation, held_at=self.days_ago(days - 5, 16), kind="case_review")

    def _day(self, name, number, days) -> None:
        born = f"{1970 + number % 25}-0{1 + number % 9}-2{number % 8}"
        encounter = self.admit(number, name=name, sex="MF"[number % 2], born=born,
                               admitted_at=self.days_ago(days, 7), discharged_at=self.days_ago(days, 16),
                               day_surgery=True)
        operation = self.operation(number, encounter, "53.0201", self.days_ago(days, 9), self.days_ago(days, 7))
        self.operate(operation, self.days_ago(days, 9))
        patient = f"DEMO-P{number}"
        if days == 3:
            self.outcomes[patient] = "complication"  # the open possible-event prompt
        elif number % 13 == 0:
            self.outcomes[patient] = "unreachable"
        elif number % 10 == 3:
            self.outcomes[patient] = "late"

    def cancer_survival_history(self) -> None:
        """Six patients of each key cancer diagnosed two to five and a half years ago, before qcflow: the HIS
        sends them with their later check-up admissions and deaths, so the survival curves have years to
        show. Their follow-up was on paper then, so the plans the diagnoses enrol are withdrawn at once."""
        from qcflow.clinical.models import Patient
        from qcflow.followup import services as followup
        from qcflow.followup.models import Plan

        icd10 = {"lung": "C34.1", "gastric": "C16.2", "liver": "C22.0", "breast": "C50.4", "colorectal": "C18.7"}
        for t, cancer in enumerate(("lung", "gastric", "liver", "breast", "colorectal")):
            for j in range(6):
                n = 900 + 10 * t + j
                patient, days = f"DEMO-H{n}", 650 + 260 * j + 20 * t
                diagnosed = self.days_ago(days, 10)
                row = {"his_id": patient, "mrn": f"BH{300000 + n}", "name": patient_name(n), "sex": "MF"[n % 2],
                       "birth_on": f"195{n % 10}-0{1 + n % 9}-0{1 + n % 8}", "phone": f"1391234{n:04d}"}
                self.intake("patients", [row], diagnosed)
                self.intake("diagnoses", [{"his_id": f"DEMO-HD{n}", "patient_his_id": patient, "cancer_type": cancer,
                                           "icd10": icd10[cancer], "diagnosed_on": diagnosed.date().isoformat(),
                                           "stage": "IIIA", "department_code": "ONC"}], diagnosed)
                plan = db.session.scalar(sa.select(Plan).join(Patient, Patient.id == Plan.patient_id)
                                         .where(Patient.his_id == patient))
                if plan is not None:
                    followup.withdraw_plan(plan, {"reason": "本系统上线前确诊，随访记录在纸质病案中。"}, actor=self.quality,
                                           now=diagnosed + timedelta(minutes=5))
                if j in (1, 3) or (j == 0 and t % 2 == 0):
                    died_on = (diagnosed + timedelta(days=120 + 150 * j)).date()
                    self.intake("patients", [{**row, "died_on": died_on.isoformat()}],
                                self.at(died_on, 18))
                    continue
                admitted = self.days_ago(40 + (11 * n) % 150, 9)
                self.intake("encounters", [{"his_id": f"DEMO-HE{n}", "patient_his_id": patient,
                                            "department_code": "ONC", "admitted_at": admitted.isoformat(),
                                            "discharged_at": (admitted + timedelta(days=2)).isoformat(),
                                            "disposition": "home"}], admitted + timedelta(days=2))

    def mdt_clinics(self) -> None:
        """Three MDT clinics (多学科门诊), as the Yubei plan asks of a tertiary hospital."""
        from datetime import time

        from qcflow.mdt.clinics import create_clinic

        opened = self.today - timedelta(days=200)
        for name, name_en, dept, specialties, (weekday, start, end) in (
            ("肺结节多学科门诊", "Lung nodule MDT clinic", "ONC",
             ["thoracic_surgery", "respiratory", "radiology", "oncology"], (3, time(14), time(17))),
            ("消化道肿瘤多学科门诊", "Gastrointestinal cancer MDT clinic", "GS",
             ["gastrointestinal_surgery", "oncology", "gastroenterology", "pathology"], (2, time(8, 30), time(11, 30))),
            ("乳腺疾病多学科门诊", "Breast disease MDT clinic", "GS",
             ["general_surgery", "oncology", "radiation_oncology"], (4, time(14), time(16, 30))),
        ):
            create_clinic({"name": name, "name_en": name_en, "department_id": self.dept(dept),
                           "specialties": specialties, "active_from": opened, "active_to": None,
                           "slots": [{"weekday": weekday, "starts_at": start, "ends_at": end}]},
                          actor=self.quality, now=self.at(opened, 9))

    def _cancer(self, name, number, days, cancer, icd10) -> None:
        patient = f"DEMO-P{number}"
        self.intake("patients", [{"his_id": patient, "mrn": f"BA{250000 + number}", "name": name,
                                  "sex": "MF"[number % 2], "birth_on": f"195{number % 10}-0{1 + number % 9}-15",
                                  "phone": f"1381234{number:04d}"}],
                    self.days_ago(days, 10))
        self.intake("diagnoses", [{"his_id": f"DEMO-D{number}", "patient_his_id": patient, "cancer_type": cancer,
                                   "icd10": icd10, "diagnosed_on": (self.today - timedelta(days=days)).isoformat(),
                                   "stage": "IIB", "department_code": "GS"}], self.days_ago(days, 10))
        self.history_patients.add(patient)

    def work_calls(self, until: datetime) -> None:
        """Generate the calls due by `until` and make each of the year's patients' calls as the nurse."""
        from qcflow.clinical.models import Patient
        from qcflow.followup import services as followup
        from qcflow.followup.models import EventPrompt, Task

        followup.generate_due(until)
        tasks = db.session.execute(
            sa.select(Task, Patient.his_id).join(Patient, Patient.id == Task.patient_id)
            .where(Task.state == "pending", Task.due_at <= until, Patient.his_id.in_(self.history_patients))
            .order_by(Task.due_at, Task.id)).all()
        for task, patient in tasks:
            outcome = self.outcomes.get(patient, "effective")
            late = outcome == "late" and task.occurrence == 1
            called = task.due_at + timedelta(hours=30 if late else (-5 if task.is_urgent else 3))
            called = min(called, self.now - timedelta(hours=27))  # the call and its attempts are all in the past
            if outcome == "effective" and task.id % 3 == 0 and self.answered_online(task, called):
                continue
            followup.claim_task(task, actor=self.nurse, now=called)
            if outcome == "unreachable" and task.occurrence == 1:
                for minutes, result in ((0, "no_answer"), (90, "busy")):
                    followup.log_attempt(task, {"channel": "phone", "result": result}, actor=self.nurse,
                                         now=called + timedelta(minutes=minutes))
                followup.mark_unreachable(task, {}, actor=self.nurse, now=called + timedelta(hours=26))
                continue
            found = outcome.startswith("complication") and task.occurrence == 1
            followup.complete_task(task, {
                "respondent": "patient" if task.id % 5 else "family", "channel": "phone", "complication": found,
                "complication_note": "切口红肿、少量渗液，已嘱门诊换药。" if found else None,
                "unplanned_readmission": False, "reoperation": False, "recurrence_metastasis": False,
                "vital_status": "alive", "health_education_given": True, "revisit_booked": task.id % 3 != 0,
                "satisfaction": 5 if task.id % 4 else 4}, actor=self.nurse, now=called)
            if found and outcome == "complication_dismissed":
                prompt = db.session.scalar(sa.select(EventPrompt).where(EventPrompt.task_id == task.id))
                followup.dismiss_prompt(prompt, {"reason": "切口脂肪液化，属术后常见情况，门诊换药后愈合，不构成不良事件。"},
                                        actor=self.quality, now=called + timedelta(days=1))

    def answered_online(self, task, called: datetime) -> bool:
        """A call of the year offered online (its phase allows it, the patient has a phone and a birth date): the
        invitation went out the day before, the patient answered three hours later and the nurse confirmed the
        plain answers two hours after that (the real services; nothing is sent over the network). False when the
        call cannot be offered online (it is then phoned)."""
        from flask import current_app

        from qcflow.clinical.models import Patient
        from qcflow.followup.invitations import services as invitations
        from qcflow.followup.invitations.queries import invitation_of

        invited_at = max(task.opens_at, called - timedelta(days=1))
        config = current_app.config
        saved = {key: config.get(key) for key in ("INVITATION_SENDERS", "INVITATION_LINK_BASE")}
        config.update(INVITATION_SENDERS=[{"channel": "sms", "url": "http://127.0.0.1:9/demo"}],
                      INVITATION_LINK_BASE=saved["INVITATION_LINK_BASE"] or "https://fu.demo.invalid")
        try:
            if not invitations.invite_due(invited_at, task_ids=[task.id]):
                return False
            invitation = invitation_of(task)
            invitations.record_send(invitation.id, "invitation", ok=True, provider_message_id=f"demo-{invitation.id}",
                                    now=invited_at)
        finally:
            config.update(saved)
        answered_at = invited_at + timedelta(hours=3)
        born = db.session.get(Patient, task.patient_id).birth_on
        invitations.check_factor(invitation, str(born.year), now=answered_at - timedelta(minutes=3))
        invitations.answer(invitation, {"respondent": "patient" if task.id % 5 else "family", "vital_status": "alive",
                                        "condition": "better" if task.id % 2 else "same", "complication": False,
                                        "unplanned_readmission": False, "reoperation": False,
                                        "recurrence_metastasis": "no", "satisfaction": 5 if task.id % 4 else 4},
                           now=answered_at)
        invitations.confirm(task, actor=self.nurse, now=answered_at + timedelta(hours=2))
        return True

    def trigger_facts(self) -> None:
        """What the HIS sent this fortnight besides operations: an ICU transfer and naloxone after a
        cholecystectomy (the anaesthetist reported the respiratory depression), a critical INR and vitamin K, a
        readmission three weeks after discharge, a transfusion reaction, and a low potassium the HIS flagged
        that is above the trigger's threshold."""
        def later(kind, rows):
            # three days ago: after the latest fact sent (the transfusion, four days ago at 10:00) whatever the hour
            # of `now` (at four days ago the transfusion came from the future before 10:00, and never fired)
            self.intake(kind, rows, self.now - timedelta(days=3))

        encounter = self.admit(901, name="周建华", sex="M", born="1956-04-12", admitted_at=self.days_ago(7, 9),
                               history=False)
        operation = self.operation(901, encounter, "51.2301", self.days_ago(6, 8), self.days_ago(7, 10))
        self.operate(operation, self.days_ago(6, 9))
        later("administrations", [{"his_id": "DEMO-M1", "encounter_his_id": encounter, "drug": "naloxone",
                                   "dose": "0.4 mg 静脉推注", "given_at": self.days_ago(6, 14).isoformat()}])
        later("transfers", [{"his_id": "DEMO-T1", "encounter_his_id": encounter, "from_department_code": "GS",
                             "to_department_code": "ICU", "to_icu": True,
                             "transferred_at": self.days_ago(6, 15).isoformat()}])
        self.file(self.report(("medication", "adverse_reaction", "medication", "II", "ANES", "外科病房",
                               "术后镇痛泵使用后患者呼吸抑制、血氧下降，予纳洛酮后好转，转入ICU观察。"),
                              self.days_ago(6, 13, 40), patient_mrn="BA250901"), by="anes")
        encounter = self.admit(902, name="吴秀兰", sex="F", born="1948-09-30", admitted_at=self.days_ago(10, 9),
                               history=False)
        later("lab_results", [{"his_id": "DEMO-L1", "encounter_his_id": encounter, "test_code": "INR", "value": 7.2,
                               "resulted_at": self.days_ago(8, 7).isoformat()},
                              {"his_id": "DEMO-L2", "encounter_his_id": encounter, "test_code": "K", "value": 3.1,
                               "unit": "mmol/L", "resulted_at": self.days_ago(8, 7).isoformat()}])
        later("administrations", [{"his_id": "DEMO-M2", "encounter_his_id": encounter, "drug": "vitamin_k",
                                   "dose": "10 mg 静脉滴注", "given_at": self.days_ago(8, 9).isoformat()}])
        self.admit(903, name="郑国强", sex="M", born="1967-01-08", admitted_at=self.days_ago(28, 9),
                   discharged_at=self.days_ago(24, 10), history=False)
        later("encounters", [{"his_id": "DEMO-E903B", "patient_his_id": "DEMO-P903", "department_code": "GS",
                              "admitted_at": self.days_ago(5, 22).isoformat()}])
        encounter = self.admit(904, name="冯丽", sex="F", born="1979-06-21", admitted_at=self.days_ago(5, 9),
                               history=False)
        later("administrations", [{"his_id": "DEMO-M3", "encounter_his_id": encounter, "drug": "blood_product",
                                   "dose": "悬浮红细胞 2 U", "given_at": self.days_ago(4, 10).isoformat(),
                                   "reaction": True}])

    def triggers_found(self) -> None:
        """The automatic extraction was switched on three days ago and read the year's HIS facts: the quality
        office confirmed the return to theatre within 48 h (the 31-day firing of the same return then links to
        that report) and set aside the death its death review handles; the rest wait for review."""
        from qcflow.extraction import services as extraction
        from qcflow.extraction.models import Trigger
        from qcflow.followup import services as followup
        from qcflow.followup.models import EventPrompt

        self.trigger_facts()
        extraction.evaluate_queued(self.now - timedelta(days=3))
        fired = {(code, p.occurred_at < self.now - timedelta(days=60)): p for p, code in db.session.execute(
            sa.select(EventPrompt, Trigger.code).join(Trigger, Trigger.id == EventPrompt.trigger_id)
            .order_by(EventPrompt.id)).all()}
        reviewed = self.now - timedelta(days=2)
        for code in ("return_theatre_48h", "return_theatre_31d"):
            if (code, True) in fired:
                followup.file_prompt(fired[code, True], actor=self.quality, now=reviewed,
                                     note="术后次日引流量增多、血红蛋白下降，再次手术止血。")
        if ("death_30d_after_operation", True) in fired:
            followup.dismiss_prompt(fired["death_30d_after_operation", True], {
                "reason_code": "already_handled", "reason": "已按围术期死亡病例讨论处理。"},
                actor=self.quality, now=reviewed)

    def planned_operations(self) -> None:
        """Two grade-4 operations planned: one in five days with its discussion requested (the booking
        gate stops it until the discussion is signed), one in nine days with its discussion scheduled."""
        planned = self.today + timedelta(days=5)
        encounter = self.admit(4, name="周明", sex="M", born="1962-07-01", admitted_at=self.now - timedelta(days=1),
                               history=False)
        self.operation(4, encounter, "52.7001", self.at(planned, 8, 30), self.now - timedelta(hours=20))
        encounter = self.admit(6, name="郭小萍", sex="F", born="1958-03-18", admitted_at=self.now - timedelta(days=2),
                               history=False)
        operation = self.operation(6, encounter, "43.7001", self.at(planned + timedelta(days=4), 8, 30),
                                   self.now - timedelta(days=2))
        from qcflow.mdt.services import transition_discussion

        transition_discussion(self.discussion_of(operation), "schedule",
                              {"scheduled_at": self.at(self.today + timedelta(days=2), 15)},
                              actor=self.head, now=self.now - timedelta(days=1))

    def calls_due_today(self) -> None:
        """Calls for the demo nurse: a day-surgery 24 h call due today and one overdue, the yearly call
        after a four-level operation and a lung-cancer call, from HIS facts pushed through the intake
        (which enrols the patients automatically)."""
        from qcflow.clinical.models import Operation
        from qcflow.clinical.services import transition_operation
        from qcflow.followup import services as followup
        from qcflow.followup.models import Task

        if any(followup.current_protocol(code) is None
               for code in ("day_surgery", "four_level_surgery", "cancer_lung")):
            return  # a database without the default protocols (they come with the migrations)
        now, his = self.now, self.his
        year_ago, quarter_ago = add_months(self.today, -12), add_months(self.today, -3)
        discharged = now - timedelta(hours=2)
        batches = [
            ("patients", [
                {"his_id": "DEMO-P1", "mrn": "BA260001", "name": "陈建华", "sex": "M", "birth_on": "1968-04-12",
                 "phone": "13812340001"},
                {"his_id": "DEMO-P2", "mrn": "BA250002", "name": "林秀英", "sex": "F", "birth_on": "1959-09-30",
                 "phone": "13912340002"},
                {"his_id": "DEMO-P3", "mrn": "BA250003", "name": "黄国强", "sex": "M", "birth_on": "1955-01-21",
                 "phone": "13712340003"},
                {"his_id": "DEMO-P5", "mrn": "BA260005", "name": "吴丽", "sex": "F", "birth_on": "1980-02-11",
                 "phone": "13812340005"},
                {"his_id": "DEMO-P6", "mrn": "BA250006", "name": "郑桂兰", "sex": "F", "birth_on": "1962-07-08",
                 "phone": "13612340006"},
            ]),
            ("encounters", [
                {"his_id": "DEMO-E1", "patient_his_id": "DEMO-P1", "department_code": "GS", "is_day_surgery": True,
                 "admitted_at": (discharged - timedelta(hours=7)).isoformat(), "discharged_at": discharged.isoformat(),
                 "disposition": "home"},
                {"his_id": "DEMO-E2", "patient_his_id": "DEMO-P2", "department_code": "GS",
                 "admitted_at": self.at(year_ago - timedelta(days=3), 9).isoformat(),
                 "discharged_at": self.at(year_ago + timedelta(days=12), 10).isoformat(), "disposition": "home"},
                # discharged 30 h ago from day surgery: the 24 h call is overdue
                {"his_id": "DEMO-E5", "patient_his_id": "DEMO-P5", "department_code": "GS", "is_day_surgery": True,
                 "admitted_at": (now - timedelta(hours=38)).isoformat(),
                 "discharged_at": (now - timedelta(hours=30)).isoformat(), "disposition": "home"},
            ]),
            ("operations", [{"his_id": "DEMO-O1", "encounter_his_id": "DEMO-E2", "procedure_code": "52.7001",
                             "surgeon_his_id": "DEMO-S1", "planned_at": self.at(year_ago, 8, 30).isoformat()}]),
            ("diagnoses", [{"his_id": "DEMO-D1", "patient_his_id": "DEMO-P3", "cancer_type": "lung", "icd10": "C34.1",
                            "diagnosed_on": quarter_ago.isoformat(), "stage": "IIA", "department_code": "GS"},
                           {"his_id": "DEMO-D6", "patient_his_id": "DEMO-P6", "cancer_type": "colorectal",
                            "icd10": "C18.7", "diagnosed_on": (quarter_ago - timedelta(days=3)).isoformat(),
                            "stage": "IIB", "department_code": "GS"}]),
        ]
        for kind, rows in batches:
            self.intake(kind, rows, now)
        # The four-level operation was performed a year ago (booked under an emergency override); its
        # 30-day call was completed by the nurse.
        operation = db.session.scalar(sa.select(Operation).where(Operation.his_id == "DEMO-O1"))
        transition_operation(operation, "book", {"emergency_override": True, "override_reason": "急性梗阻性黄疸伴胆管炎，急诊手术"},
                             actor=self.head, now=self.at(year_ago, 7))
        transition_operation(operation, "perform", {"performed_at": self.at(year_ago, 9)}, actor=self.head,
                             now=self.at(year_ago, 14))
        followup.generate_due(now)
        first = db.session.scalar(sa.select(Task).join(Task.plan).where(Task.patient_id == operation.patient_id,
                                                                        Task.occurrence == 1))
        called = first.due_at + timedelta(hours=10)
        followup.claim_task(first, actor=self.nurse, now=called)
        followup.complete_task(first, {"respondent": "patient", "channel": "phone", "complication": False,
                                       "unplanned_readmission": False, "reoperation": False, "vital_status": "alive",
                                       "health_education_given": True, "revisit_booked": True, "satisfaction": 5},
                               actor=self.nurse, now=called)
        followup.generate_due(now)
        self.answers_online()

    def answers_online(self) -> None:
        """Three of today's calls were offered online three days ago (the real services, a sender configured for the
        moment, nothing sent over the network): 林秀英 answered (pending the nurse's confirmation), 郑桂兰 answered
        with a complication and feeling worse (first in the queue, a possible event for the quality office), 黄国强
        has not answered (delivered, one reminder sent)."""
        from flask import current_app

        from qcflow.clinical.models import Patient
        from qcflow.followup.invitations import queries as invitation_queries, services as invitations
        from qcflow.followup.models import Task

        config = current_app.config
        saved = {key: config.get(key) for key in ("INVITATION_SENDERS", "INVITATION_LINK_BASE")}
        config.update(INVITATION_SENDERS=[{"channel": "sms", "url": "http://127.0.0.1:9/demo"}],
                      INVITATION_LINK_BASE=saved["INVITATION_LINK_BASE"] or "https://fu.demo.invalid")
        try:
            sent_at = self.now - timedelta(days=3)
            invitations.invite_due(sent_at)

            def send(at):
                for out in invitations.take_due(at):
                    invitations.record_send(out.invitation_id, out.kind, ok=True, now=at,
                                            provider_message_id=f"demo-{out.invitation_id}-{out.kind}")
                    if out.kind == "invitation":
                        invitations.record_delivery(f"demo-{out.invitation_id}-{out.kind}", "delivered",
                                                    now=at + timedelta(minutes=1))

            send(sent_at)

            def invitation_of(his_id):
                task = db.session.scalar(sa.select(Task).join(Patient, Patient.id == Task.patient_id)
                                         .where(Patient.his_id == his_id, Task.state == "pending"))
                return invitation_queries.invitation_of(task) if task else None

            answers = {"respondent": "patient", "condition": "better", "complication": False,
                       "unplanned_readmission": False, "reoperation": False, "recurrence_metastasis": "no",
                       "satisfaction": 5, "revisit_requested": True, "note": "恢复良好，想预约复查。"}
            answered = invitation_of("DEMO-P2")
            if answered is not None and invitations.check_factor(answered, "1959", now=self.now - timedelta(days=2)):
                invitations.answer(answered, answers, now=self.now - timedelta(days=2, minutes=-4))
            send(sent_at + timedelta(hours=config["INVITATION_REMINDER_HOURS"][0]))
            alarming = invitation_of("DEMO-P6")
            if alarming is not None and invitations.check_factor(alarming, "1962", now=self.now - timedelta(hours=5)):
                invitations.answer(alarming, {**answers, "condition": "worse", "complication": True,
                                              "complication_note": "近一周腹痛、排便次数增多，偶有便血。",
                                              "revisit_requested": True, "note": None},
                                   now=self.now - timedelta(hours=5, minutes=-6))
        finally:
            config.update(saved)


    def read_old_notifications(self) -> None:
        """The year's notifications were read when they came; only the last three days' are new."""
        from qcflow.notify.models import Notification
        from qcflow.notify.services import mark_read

        for notification in db.session.scalars(sa.select(Notification).where(
                Notification.created_at < self.now - timedelta(days=3), Notification.read_at.is_(None))):
            mark_read(notification.user_id, notification.id, now=notification.created_at + timedelta(hours=2))


#: The demo patient whose invitation is left unanswered, and the year of birth that confirms them on the page.
UNANSWERED_DEMO_PATIENT = ("DEMO-P3", "黄国强", 1955)


def demo_patient_link() -> str | None:
    """The path of the link the demo sent to the patient who has not answered yet (to answer as that patient on
    the demo server), while the link still works."""
    from qcflow.clinical.models import Patient
    from qcflow.core.time import now as clock_now
    from qcflow.followup.invitations import services as invitations
    from qcflow.followup.invitations.models import Invitation

    invitation = db.session.scalar(sa.select(Invitation).join(Patient, Patient.id == Invitation.patient_id)
                                   .where(Patient.his_id == UNANSWERED_DEMO_PATIENT[0]).order_by(Invitation.id.desc()))
    if not invitations.usable(invitation, clock_now()):
        return None
    return f"/f/{invitations.token_of(invitation)}"


def load_demo_census(now: datetime) -> None:
    """Monthly discharge counts of the clinical departments for the last 12 months (this month so
    far included), so the indicators page has realistic denominators."""
    from qcflow.clinical.services import import_rows
    from qcflow.core.time import local

    month = local(now).date().replace(day=1)
    rows = []
    for back in range(12):
        label = f"{add_months(month, -back):%Y-%m}"
        share = local(now).day / 30 if back == 0 else 1  # this month: so far
        for code, per_month in (("GS", 180), ("ORTH", 150), ("CARD", 210), ("ONC", 120), ("DSC", 90)):
            rows.append({"department_code": code, "month": label,
                         "discharges": max(1, round((per_month + 7 * (back % 3)) * min(share, 1)))})
    import_rows("census", rows, actor=Actor.system("demo-data"), now=now, strict=True)


def load_demo_reported_values(users, departments, now: datetime) -> None:
    """Four months of three reported indicators of general surgery (the pain assessment rate, and two of its own
    key indicators): the older months approved, one value returned with a reason, last month partly entered
    (one value from the HIS awaiting approval, one still missing), so the entry, approval and completeness
    pages are not empty."""
    from qcflow.core.time import local
    from qcflow.indicators import reporting
    from qcflow.indicators.models import IndicatorSetup, LocalIndicator

    gs = departments["GS"].id
    db.session.add(IndicatorSetup(code="pain_assessment_rate", method="reported", department_id=gs, updated_at=now,
                                  updated_by="system:demo-data"))
    for code, name, name_en, unit, direction, definition in (
            ("local_gs_safety_checklist", "手术安全核查表规范执行率", "Surgical safety checklist completed as required",
             "percent", "higher", "规范执行手术安全核查的手术台次/同期手术台次"),
            ("local_gs_first_case_delay", "首台手术平均延迟时间", "Mean delay of the first operation of the day",
             "minutes", "lower", "首台手术实际开始时间与计划时间之差的平均值（分钟）")):
        db.session.add(LocalIndicator(code=code, name=name, name_en=name_en, unit=unit, direction=direction,
                                      definition=definition, department_id=gs, created_at=now, updated_at=now,
                                      updated_by="system:demo-data"))
    db.session.flush()
    head, quality = Actor.for_user(users["head"]), Actor.for_user(users["quality"])
    this_month = local(now).date().replace(day=1)
    for back in (4, 3, 2, 1):
        month = add_months(this_month, -back)
        day = add_months(month, 1) + timedelta(days=2)
        entered = min(datetime(day.year, day.month, day.day, 9, tzinfo=local(now).tzinfo), now)
        decided = min(entered + timedelta(days=1), now)
        values = {
            "pain_assessment_rate": {"numerator": 171 + back * 3, "denominator": 180 + back * 2},
            "local_gs_safety_checklist": {"numerator": 118 + back, "denominator": 126 + back},
            "local_gs_first_case_delay": {"value": 14.5 + back * 2.5},
        }
        if back == 1:
            # Last month: pain assessment pushed by the HIS, the delay typed in; the checklist still missing.
            reporting.import_rows([{"code": "pain_assessment_rate", "month": f"{month:%Y-%m}", "department_code": "GS",
                                    **values["pain_assessment_rate"]}], actor=Actor.system("demo-data"),
                                  now=entered, strict=True)
            reporting.submit("local_gs_first_case_delay", month, gs, actor=head, now=entered,
                             **values["local_gs_first_case_delay"])
            continue
        for code, parts in values.items():
            report, _status = reporting.submit(code, month, gs, actor=head, now=entered, **parts)
            if back == 2 and code == "local_gs_safety_checklist":
                reporting.decide(report, "return", actor=quality, now=decided, expected_version=report.version,
                                 reason="分母应为当月全部手术台次（含急诊），请核对后重新提交")
            else:
                reporting.decide(report, "approve", actor=quality, now=decided, expected_version=report.version)
    db.session.flush()
