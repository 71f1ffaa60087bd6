"""Reference data the synthetic data set is drawn from: Wuxi's districts, names, industries, hospitals, diagnoses."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta, timezone

#: Every date in the data set is relative to this day, never to the clock, so
#: a seed is reproducible; claims span the two years before it.
AS_OF = date(2026, 11, 15)
WINDOW_START = AS_OF - timedelta(days=730)
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")

CITY_ID = "ORG-WX"
CITY_NAME = "无锡市总工会"


@dataclass(frozen=True)
class District:
    key: str
    name: str
    region: str  # GB/T 2260 code, the first six digits of ids and credit codes
    weight: float  # share of employers
    prefix: str  # how local company names begin
    union_name: str

    @property
    def place(self) -> str:
        """How public institutions name their place: 无锡市梁溪区, but 江阴市 for a county-level city."""
        return self.name if self.name.endswith("市") else f"无锡市{self.name}"

    @property
    def org_id(self) -> str:
        return f"{CITY_ID}-{self.key}"


DISTRICTS: tuple[District, ...] = (
    District("LX", "梁溪区", "320213", 0.13, "无锡", "梁溪区总工会"),
    District("XS", "锡山区", "320205", 0.11, "无锡", "锡山区总工会"),
    District("HS", "惠山区", "320206", 0.12, "无锡", "惠山区总工会"),
    District("BH", "滨湖区", "320211", 0.11, "无锡", "滨湖区总工会"),
    District("XW", "新吴区", "320214", 0.21, "无锡", "新吴区总工会"),
    District("JY", "江阴市", "320281", 0.19, "江阴", "江阴市总工会"),
    District("YX", "宜兴市", "320282", 0.13, "宜兴", "宜兴市总工会"),
)

#: Where members' ids were issued: 320202 is the former 崇安区, merged into
#: 梁溪区 in 2015, so older ids of 梁溪 people still carry it.
ID_REGIONS = ("320202", "320205", "320206", "320211", "320213", "320214", "320281", "320282")

# Frequency-weighted surnames, Jiangsu-flavoured (顾, 钱, 陆, 华 and 过 are local).
SURNAMES: tuple[tuple[str, float], ...] = (
    ("王", 7.1), ("张", 6.0), ("陈", 5.5), ("李", 5.0), ("刘", 4.5), ("周", 3.0), ("吴", 3.0), ("徐", 2.6),
    ("杨", 2.5), ("朱", 2.1), ("孙", 2.0), ("黄", 2.0), ("赵", 1.8), ("胡", 1.5), ("沈", 1.3), ("顾", 1.2),
    ("陆", 1.2), ("蒋", 1.2), ("许", 1.2), ("高", 1.2), ("钱", 1.0), ("郭", 1.0), ("马", 1.0), ("林", 1.0),
    ("何", 0.9), ("唐", 0.9), ("华", 0.8), ("曹", 0.8), ("郑", 0.8), ("谢", 0.8), ("姚", 0.7), ("邵", 0.6),
    ("范", 0.6), ("戴", 0.6), ("丁", 0.6), ("袁", 0.6), ("金", 0.6), ("蔡", 0.6), ("潘", 0.6), ("韩", 0.6),
    ("冯", 0.6), ("宋", 0.6), ("梁", 0.6), ("叶", 0.6), ("汤", 0.5), ("薛", 0.5), ("秦", 0.5), ("任", 0.5),
    ("吕", 0.5), ("程", 0.5), ("彭", 0.5), ("邹", 0.5), ("严", 0.5), ("杜", 0.4), ("魏", 0.4), ("倪", 0.4),
    ("俞", 0.4), ("施", 0.4), ("尤", 0.3), ("谈", 0.3), ("缪", 0.3), ("孔", 0.3), ("殷", 0.3), ("季", 0.3),
    ("过", 0.2), ("浦", 0.2), ("欧阳", 0.05), ("司马", 0.02),
)

MALE_CHARS = "伟强磊军勇杰涛斌超明刚平辉鹏飞鑫波宇浩凯健俊帆旭宁龙阳建国峰亮成东志海晨博翔昊睿哲航轩宏锋毅彬"
FEMALE_CHARS = "芳娜敏静丽艳娟霞燕玲婷雪慧颖琳晶倩洁红梅萍莉兰琴云佳欣怡悦月蓉薇瑶璐雯岚秀英丹琪蕾菲"
COMMON_FIRST = "晓子雨思佳志建海文明国家永春秋金玉美嘉一梓欣雅亦"

BRAND_CHARS = "华新恒瑞宏德诚信达盛昌泰源丰隆汇嘉锦通远科捷润晶芯联安康和美立迅海天宇辰星耀明光金鑫益众邦创智博睿佳正力腾飞凯航阳春晨锡惠湖澄蠡鼎峰顺祥瀚翔"


@dataclass(frozen=True)
class Job:
    title: str
    salary_min: int  # monthly CNY, the low end of the offered band
    salary_max: int


@dataclass(frozen=True)
class Industry:
    key: str
    label: str  # members.employers.industry and recruitment.postings.sector
    weight: float  # share of employers
    size: float  # relative workforce of one employer
    female_share: float
    dispatched_share: float
    union_share: float  # employers with their own grassroots union
    names: tuple[str, ...]  # {p}: local prefix (无锡), {c}: full place (无锡市梁溪区, 江阴市), {b}: brand
    jobs: tuple[Job, ...]
    credit_prefix: str = "91"  # registration authority + kind: 91 enterprise, 12 public institution, 52 private non-profit
    public_share: float = 0.0  # share registered as public institutions (12)
    districts: dict[str, float] = field(default_factory=dict)  # weight multipliers by district key


INDUSTRIES: tuple[Industry, ...] = (
    Industry(
        "kindergarten", "学前教育", 0.08, 0.3, 0.95, 0.03, 0.95,
        ("{c}{b}幼儿园", "{p}市{b}实验幼儿园", "{c}{b}中心幼儿园", "{p}{b}双语幼儿园"),
        (Job("幼儿教师", 4500, 7000), Job("保育员", 3800, 5000), Job("保健医生", 5000, 7500)),
        credit_prefix="52", public_share=0.5,
    ),
    Industry(
        "manufacturing", "机械制造", 0.20, 1.6, 0.30, 0.12, 0.85,
        ("{p}{b}精密机械有限公司", "{p}{b}汽车零部件有限公司", "{p}{b}机电设备有限公司", "{p}{b}动力科技有限公司",
         "{p}{b}金属制品有限公司", "{p}{b}电气有限公司"),
        (Job("数控操作工", 5500, 8500), Job("焊工", 6000, 9000), Job("质检员", 4800, 6500), Job("设备维修电工", 6500, 9500),
         Job("机械设计工程师", 8000, 15000)),
        districts={"JY": 1.6, "HS": 1.4, "XS": 1.3, "LX": 0.4},
    ),
    Industry(
        "semiconductor", "集成电路与物联网", 0.12, 2.2, 0.45, 0.08, 0.9,
        ("{p}{b}微电子有限公司", "{p}{b}半导体科技有限公司", "{p}{b}物联网技术有限公司", "{p}{b}集成电路设计有限公司",
         "{p}{b}传感技术有限公司"),
        (Job("晶圆制造操作员", 5500, 8000), Job("半导体工艺工程师", 10000, 20000), Job("嵌入式软件工程师", 12000, 25000),
         Job("封装测试技术员", 6000, 9000), Job("物联网平台开发工程师", 12000, 22000)),
        districts={"XW": 3.0, "BH": 1.2, "LX": 0.5, "YX": 0.5},
    ),
    Industry(
        "textile", "纺织服装", 0.10, 1.4, 0.70, 0.08, 0.85,
        ("{p}{b}纺织有限公司", "{p}{b}服饰有限公司", "{p}{b}印染有限公司", "{p}{b}毛纺织染有限公司"),
        (Job("纺织挡车工", 5000, 7000), Job("缝纫工", 4800, 7500), Job("服装设计师", 7000, 13000), Job("印染技术员", 5500, 8000)),
        districts={"JY": 2.5, "XS": 1.5, "XW": 0.4, "BH": 0.5},
    ),
    Industry(
        "logistics", "交通运输与物流", 0.10, 1.0, 0.20, 0.22, 0.75,
        ("{p}{b}物流有限公司", "{p}{b}供应链管理有限公司", "{p}{b}快递服务有限公司", "{p}{b}货运有限公司"),
        (Job("快递分拣员", 5000, 7500), Job("叉车司机", 5500, 8000), Job("仓储管理员", 5000, 7000), Job("货车司机", 7000, 11000)),
        districts={"XW": 1.4, "HS": 1.3},
    ),
    Industry(
        "healthcare", "医疗卫生", 0.07, 1.5, 0.75, 0.05, 0.95,
        ("{p}{b}医院", "{c}{b}街道社区卫生服务中心", "{p}{b}康复医院", "{p}{b}口腔医院"),
        (Job("护士", 6000, 9000), Job("临床医生", 10000, 20000), Job("药剂师", 6000, 9000), Job("护理员", 4500, 6000)),
        credit_prefix="12", public_share=0.6, districts={"LX": 1.8, "BH": 1.3},
    ),
    Industry(
        "retail", "批发零售", 0.12, 0.7, 0.60, 0.12, 0.7,
        ("{p}{b}商贸有限公司", "{p}{b}超市有限公司", "{p}{b}百货有限公司", "{p}{b}连锁便利店有限公司"),
        (Job("收银员", 4000, 5500), Job("理货员", 4000, 5500), Job("门店店长", 7000, 11000), Job("导购", 4500, 7000)),
        districts={"LX": 2.0, "BH": 1.2},
    ),
    Industry(
        "construction", "建筑业", 0.09, 1.2, 0.10, 0.20, 0.75,
        ("{p}{b}建设工程有限公司", "{p}{b}建筑安装工程有限公司", "{p}{b}市政工程有限公司"),
        (Job("钢筋工", 7000, 11000), Job("电工", 6500, 10000), Job("施工员", 6000, 9000), Job("安全员", 5500, 8000)),
        districts={"YX": 1.5, "JY": 1.2},
    ),
    Industry(
        "catering", "住宿餐饮", 0.07, 0.6, 0.55, 0.15, 0.65,
        ("{p}{b}餐饮管理有限公司", "{p}{b}酒店管理有限公司", "{p}{b}食品有限公司"),
        (Job("厨师", 6000, 10000), Job("服务员", 4200, 5800), Job("面点师", 5500, 8000), Job("前台接待", 4200, 5800)),
        districts={"LX": 1.6, "BH": 1.5, "YX": 1.2},
    ),
    Industry(
        "ceramics", "陶瓷与环保", 0.05, 1.0, 0.40, 0.10, 0.8,
        ("宜兴{b}紫砂陶瓷有限公司", "{p}{b}环保科技有限公司", "{p}{b}耐火材料有限公司"),
        (Job("制陶工", 5000, 9000), Job("环保设备装配工", 5500, 8000), Job("窑炉操作工", 5500, 8500)),
        districts={"YX": 8.0, "LX": 0.1, "XW": 0.2, "BH": 0.3},
    ),
)

INDUSTRY_BY_KEY = {i.key: i for i in INDUSTRIES}


@dataclass(frozen=True)
class Hospital:
    code: str  # 定点医疗机构编码
    name: str
    district: str | None  # None: a city hospital every district uses


HOSPITALS: tuple[Hospital, ...] = (
    Hospital("H32021300001", "无锡市人民医院", None),
    Hospital("H32021300002", "无锡市第二人民医院", None),
    Hospital("H32021300003", "无锡市中医医院", None),
    Hospital("H32021300004", "无锡市妇幼保健院", None),
    Hospital("H32021100005", "江南大学附属医院", None),
    Hospital("H32021100006", "无锡市第五人民医院", "BH"),
    Hospital("H32020500007", "无锡市锡山人民医院", "XS"),
    Hospital("H32020600008", "无锡市惠山区人民医院", "HS"),
    Hospital("H32021400009", "无锡市新吴区新瑞医院", "XW"),
    Hospital("H32028100010", "江阴市人民医院", "JY"),
    Hospital("H32028100011", "江阴市中医院", "JY"),
    Hospital("H32028200012", "宜兴市人民医院", "YX"),
    Hospital("H32028200013", "宜兴市中医医院", "YX"),
)


@dataclass(frozen=True)
class Diagnosis:
    code: str  # ICD-10
    name: str
    weight: float
    days: tuple[int, int]  # length of stay, inclusive range
    cost: int  # typical total cost in CNY
    gender: str | None = None


DIAGNOSES: tuple[Diagnosis, ...] = (
    Diagnosis("J18.9", "肺炎", 10, (5, 12), 9000),
    Diagnosis("K35.8", "急性阑尾炎", 6, (3, 7), 12000),
    Diagnosis("K80.2", "胆囊结石", 5, (3, 8), 16000),
    Diagnosis("N20.0", "肾结石", 4, (2, 6), 10000),
    Diagnosis("M51.2", "腰椎间盘突出", 5, (7, 15), 26000),
    Diagnosis("S82.2", "胫骨骨干骨折", 3, (7, 20), 32000),
    Diagnosis("S52.5", "桡骨下端骨折", 3, (3, 10), 15000),
    Diagnosis("I25.1", "动脉粥样硬化性心脏病", 4, (5, 12), 30000),
    Diagnosis("E11.9", "2型糖尿病", 3, (7, 14), 9000),
    Diagnosis("J44.1", "慢性阻塞性肺病伴急性加重", 2, (8, 16), 14000),
    Diagnosis("K29.7", "胃炎", 3, (3, 7), 6000),
    Diagnosis("I10", "原发性高血压", 2, (5, 10), 7000),
    Diagnosis("O80.0", "单胎顺产", 4, (2, 4), 6000, "FEMALE"),
    Diagnosis("O82.0", "剖宫产术的单胎分娩", 3, (4, 7), 11000, "FEMALE"),
    Diagnosis("D25.9", "子宫平滑肌瘤", 2, (5, 8), 18000, "FEMALE"),
    Diagnosis("C34.9", "肺恶性肿瘤", 1.2, (10, 30), 90000),
    Diagnosis("C16.9", "胃恶性肿瘤", 0.6, (12, 28), 85000),
    Diagnosis("C18.9", "结肠恶性肿瘤", 0.5, (10, 25), 80000),
    Diagnosis("C22.0", "肝细胞癌", 0.4, (10, 25), 95000),
    Diagnosis("C50.9", "乳腺恶性肿瘤", 1.0, (8, 20), 60000, "FEMALE"),
    Diagnosis("C53.9", "子宫颈恶性肿瘤", 0.5, (8, 20), 60000, "FEMALE"),
    Diagnosis("C61", "前列腺恶性肿瘤", 0.3, (8, 18), 60000, "MALE"),
    Diagnosis("I21.9", "急性心肌梗死", 0.8, (7, 14), 60000),
    Diagnosis("I63.9", "脑梗死", 1.2, (10, 21), 40000),
    Diagnosis("I61.9", "脑出血", 0.4, (14, 30), 70000),
    Diagnosis("N18.5", "慢性肾脏病5期", 0.3, (10, 20), 40000),
)

MEDICAL_SCHEME = "城镇职工基本医疗保险"
PHONE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "157",
                  "158", "159", "177", "180", "181", "182", "183", "187", "188", "189", "198", "199")
