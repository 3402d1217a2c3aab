"""Generate the synthetic customers of the demo tenant pack (tenants/demo/customers.yaml).

Every value is invented: names are drawn from common surnames and given-name characters,
identifiers are random digits with a correct check character, mobiles are random digits
behind real carrier prefixes, e-mail addresses use the reserved example.com / example.cn
domains. No real person's or company's data is used; the script needs no network.

The output is deterministic (random.Random(20261122)), so running it again rewrites the
same file. Ages are computed against the demo tenant's business date, 2026-11-22.

    cd /work/main && .venv/bin/python tenants/demo/generate.py
"""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import yaml  # noqa: E402

from core.regions import SHANXI, region_name  # noqa: E402
from core.validators import (  # noqa: E402
    CREDIT_CODE_ALPHABET,
    check_credit_code,
    check_mobile,
    check_resident_id,
    credit_code_check_char,
    resident_id_birth_date,
    resident_id_check_char,
)

SEED = 20261122
BUSINESS_DATE = date(2026, 11, 22)
N_INDIVIDUALS, N_COMPANIES = 100, 20
OUT = Path(__file__).resolve().with_name("customers.yaml")

# --- vocabularies -------------------------------------------------------------------------

# Surname -> (pinyin, weight); the weights lean towards surnames frequent in Shanxi.
SURNAMES = {
    "王": ("wang", 14), "李": ("li", 12), "张": ("zhang", 11), "刘": ("liu", 9),
    "赵": ("zhao", 6), "杨": ("yang", 6), "郭": ("guo", 6), "陈": ("chen", 4),
    "武": ("wu", 4), "贾": ("jia", 3), "吴": ("wu", 2), "周": ("zhou", 2), "黄": ("huang", 1),
    "温": ("wen", 2), "梁": ("liang", 2), "高": ("gao", 3), "韩": ("han", 2), "任": ("ren", 2),
    "薛": ("xue", 2), "闫": ("yan", 2), "段": ("duan", 1), "史": ("shi", 1), "牛": ("niu", 1),
    "孟": ("meng", 1), "乔": ("qiao", 1), "郝": ("hao", 2), "侯": ("hou", 1), "霍": ("huo", 1),
    "田": ("tian", 1), "白": ("bai", 1), "冯": ("feng", 1), "常": ("chang", 1),
}
MALE_CHARS = {
    "建": "jian", "国": "guo", "军": "jun", "伟": "wei", "强": "qiang", "磊": "lei",
    "斌": "bin", "勇": "yong", "峰": "feng", "涛": "tao", "明": "ming", "华": "hua",
    "杰": "jie", "鹏": "peng", "志": "zhi", "宏": "hong", "文": "wen", "晋": "jin",
    "刚": "gang", "海": "hai", "亮": "liang", "俊": "jun", "浩": "hao", "宇": "yu",
    "鑫": "xin", "超": "chao", "平": "ping", "东": "dong", "波": "bo", "飞": "fei",
    "辉": "hui", "龙": "long", "成": "cheng", "利": "li", "忠": "zhong", "林": "lin",
}
FEMALE_CHARS = {
    "丽": "li", "娟": "juan", "芳": "fang", "敏": "min", "静": "jing", "艳": "yan",
    "霞": "xia", "燕": "yan", "红": "hong", "玲": "ling", "婷": "ting", "慧": "hui",
    "丹": "dan", "萍": "ping", "琳": "lin", "洁": "jie", "雪": "xue", "梅": "mei",
    "琴": "qin", "佳": "jia", "欣": "xin", "悦": "yue", "瑶": "yao", "倩": "qian",
    "晓": "xiao", "彩": "cai", "秀": "xiu", "英": "ying", "翠": "cui", "凤": "feng",
    "荣": "rong", "雅": "ya", "月": "yue", "春": "chun", "桂": "gui", "兰": "lan",
}

# County-level codes (not ending in "00"), with a weight: Taiyuan districts are busiest.
REGIONS = {c: (3 if c.startswith("1401") else 2) for c in SHANXI if not c.endswith("00")}
COAL_CITIES = ("1402", "1403", "1404", "1405", "1406", "1410", "1411")
FARM_CITIES = ("1407", "1408", "1409", "1410")

INDUSTRY_WEIGHTS = {
    "individual": {
        "agriculture": 16, "coal": 12, "wholesale_retail": 18, "transport": 10,
        "construction": 9, "catering": 9, "services": 11, "manufacturing": 6,
        "technology": 3, "other": 6,
    },
    "company": {
        "agriculture": 14, "coal": 16, "wholesale_retail": 18, "transport": 10,
        "construction": 12, "catering": 6, "services": 6, "manufacturing": 12,
        "technology": 4, "other": 2,
    },
}

# Company name suffixes by industry. All are limited companies ("91" credit codes): a
# farmers' cooperative (专业合作社) would carry a "93" code, so none is generated here.
COMPANY_SUFFIXES = {
    "agriculture": ("农业开发有限公司", "种植有限公司", "养殖有限公司", "果业有限公司"),
    "coal": ("煤炭运销有限公司", "洗煤有限公司", "煤炭经销有限公司"),
    "manufacturing": ("机械制造有限公司", "铸造有限公司", "食品有限公司", "醋业有限公司",
                      "包装制品有限公司"),
    "construction": ("建筑工程有限公司", "建筑劳务有限公司", "装饰工程有限公司"),
    "wholesale_retail": ("商贸有限公司", "农资有限公司", "建材有限公司", "超市有限公司"),
    "transport": ("物流有限公司", "汽车运输有限公司"),
    "catering": ("餐饮管理有限公司", "酒店管理有限公司"),
    "services": ("家政服务有限公司", "汽车维修服务有限公司", "商务咨询有限公司"),
    "technology": ("网络科技有限公司", "信息技术有限公司"),
    "other": ("文化传媒有限公司", "教育咨询有限公司"),
}
# Trade-name (字号) characters; two are combined, so names are invented, not looked up.
BRAND_FIRST = {
    "晋": "jin", "汾": "fen", "丰": "feng", "鑫": "xin", "恒": "heng", "瑞": "rui",
    "德": "de", "华": "hua", "永": "yong", "金": "jin", "润": "run", "嘉": "jia",
    "汇": "hui", "泰": "tai", "裕": "yu", "兴": "xing", "盛": "sheng", "福": "fu",
}
BRAND_SECOND = {
    "禾": "he", "源": "yuan", "达": "da", "晟": "sheng", "通": "tong", "隆": "long",
    "邦": "bang", "昌": "chang", "远": "yuan", "信": "xin", "辉": "hui", "茂": "mao",
    "锦": "jin", "益": "yi", "升": "sheng", "阳": "yang", "川": "chuan", "峰": "feng",
}

STREET_FIRST = ("长风", "迎春", "建业", "振兴", "和平", "兴华", "新民", "文昌", "富民", "锦绣",
                "康乐", "永安", "春晖", "朝阳", "丰泽", "安泰", "学府", "青年", "育才", "德胜")
STREET_LAST = ("街", "路", "大街", "东路", "西路", "北街", "南街", "巷")
ESTATES = ("锦绣苑", "阳光花园", "金桂园", "和顺家园", "龙城小区", "汾水雅居", "福康里",
           "新华苑", "丰泽园", "翠竹苑")
TOWN_PARTS = (("东", "西", "南", "北", "上", "下", "大", "新", "古"),
              ("庄", "河", "堡", "峪", "店", "寨", "坡", "关", "泉"))
VILLAGE_PARTS = (("王家", "李家", "张家", "刘家", "杨家", "郭家", "贾家", "武家", "赵家"),
                 ("庄", "沟", "堡", "峪", "坪", "河", "湾", "洼"))

SOURCES = {"门店": 30, "转介绍": 25, "线上": 15, "电话营销": 15, "合作方": 15}
MOBILE_PREFIXES = (
    "134", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159",
    "182", "183", "187", "188", "130", "131", "132", "155", "156", "185", "186", "133",
    "153", "180", "181", "189", "177", "199",
)
EMAIL_DOMAINS = ("example.com", "example.cn")
ALLOWED_KEYS = {
    "kind", "name", "resident_id", "gender", "credit_code", "legal_representative", "mobile",
    "email", "region", "address", "industry", "annual_income", "source", "wechat_id",
    "credit_limit_wish",
}

# --- generators ---------------------------------------------------------------------------


def pick(rng: random.Random, weighted: dict) -> str:
    """One key of `weighted` (key -> weight, or key -> (..., weight)), by weight."""
    keys = list(weighted)
    weights = [w[-1] if isinstance(w, tuple) else w for w in weighted.values()]
    return rng.choices(keys, weights=weights)[0]


def money(amount: int | Decimal) -> str:
    """A money string with two decimals ("86000.00"), never a float."""
    return f"{Decimal(amount):.2f}"


def person_name(rng: random.Random, gender: str) -> tuple[str, str, str]:
    """(name, surname pinyin, given-name pinyin) of a person of `gender`."""
    surname = pick(rng, SURNAMES)
    chars = MALE_CHARS if gender == "male" else FEMALE_CHARS
    given = rng.sample(list(chars), 1 if rng.random() < 0.3 else 2)
    return surname + "".join(given), SURNAMES[surname][0], "".join(chars[c] for c in given)


def industry_for(rng: random.Random, kind: str, region: str) -> str:
    """An industry, with coal boosted in mining cities and farming in rural areas."""
    weights = dict(INDUSTRY_WEIGHTS[kind])
    if region[:4] in COAL_CITIES:
        weights["coal"] *= 2
    if region[:4] in FARM_CITIES or int(region[4:]) >= 21:  # counties, county-level cities
        weights["agriculture"] *= 2
    if region.startswith("1401"):
        weights["technology"] *= 2
        weights["agriculture"] //= 2
    return pick(rng, weights)


def birth_date(rng: random.Random) -> date:
    """A birth date making the person 22–60 on the business date, most between 30 and 50."""
    oldest = date(BUSINESS_DATE.year - 61, BUSINESS_DATE.month, BUSINESS_DATE.day) + timedelta(1)
    youngest = date(BUSINESS_DATE.year - 22, BUSINESS_DATE.month, BUSINESS_DATE.day)
    span = (youngest - oldest).days
    return oldest + timedelta(days=round(rng.triangular(0, span, span * 0.55)))


def resident_id(rng: random.Random, region: str, born: date, gender: str) -> str:
    """18 characters: area code, birth date, sequence (odd = male, even = female), check."""
    while True:
        seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if gender == "male"
                                                       else (0, 2, 4, 6, 8))
        if seq:
            break
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_char(first17)


def credit_code(rng: random.Random, region: str) -> str:
    """"91" (market regulator, enterprise) + region code + 9 random characters + check."""
    first17 = "91" + region + "".join(rng.choice(CREDIT_CODE_ALPHABET) for _ in range(9))
    return first17 + credit_code_check_char(first17)


def mobile(rng: random.Random, used: set[str]) -> str:
    while True:
        m = rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if m not in used:
            used.add(m)
            return m


def street(rng: random.Random) -> str:
    return rng.choice(STREET_FIRST) + rng.choice(STREET_LAST)


def home_address(rng: random.Random, region: str, rural: bool) -> str:
    """A flat in town, or a house in a village for farmers outside the city districts."""
    place = region_name(region)
    if rural:
        town = rng.choice(TOWN_PARTS[0]) + rng.choice(TOWN_PARTS[1]) + rng.choice("镇乡")
        village = rng.choice(VILLAGE_PARTS[0]) + rng.choice(VILLAGE_PARTS[1]) + "村"
        return f"{place}{town}{village} {rng.randint(1, 180)} 号"
    unit = f"{rng.randint(1, 6)} 单元 {rng.randint(1, 18)}0{rng.randint(1, 4)}"
    if rng.random() < 0.5:
        return f"{place}{street(rng)}{rng.choice(ESTATES)} {rng.randint(1, 24)} 号楼 {unit}"
    return f"{place}{street(rng)} {rng.randint(1, 300)} 号 {unit}"


def business_address(rng: random.Random, region: str, industry: str) -> str:
    place = region_name(region)
    if industry in ("manufacturing", "coal", "transport") and rng.random() < 0.6:
        park = rng.choice(STREET_FIRST) + rng.choice(("工业园区", "物流园区", "经济开发区"))
        return f"{place}{park}{street(rng)} {rng.randint(1, 120)} 号"
    if industry == "agriculture":
        town = rng.choice(TOWN_PARTS[0]) + rng.choice(TOWN_PARTS[1]) + "镇"
        village = rng.choice(VILLAGE_PARTS[0]) + rng.choice(VILLAGE_PARTS[1]) + "村"
        return f"{place}{town}{village}"
    return f"{place}{street(rng)} {rng.randint(1, 400)} 号"


def company_name(rng: random.Random, region: str, industry: str) -> tuple[str, str]:
    """(name, trade-name pinyin): "<city or county><trade name><industry suffix>"."""
    full = region_name(region)
    city = SHANXI[region[:4] + "00"]
    county = full[len(city):]
    if county.endswith("区"):  # districts: 太原市 or 太原市小店区
        prefix = rng.choice((city, full))
    else:  # counties and county-level cities register under their own name: 清徐县, 高平市
        prefix = county
    a, b = rng.choice(list(BRAND_FIRST)), rng.choice(list(BRAND_SECOND))
    return prefix + a + b + rng.choice(COMPANY_SUFFIXES[industry]), BRAND_FIRST[a] + BRAND_SECOND[b]


def ascii_id(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("abcdefghijkmnpqrstuvwxyz23456789") for _ in range(n))


def individual(rng: random.Random, used_mobiles: set[str], used_names: set[str]) -> dict:
    gender = "male" if rng.random() < 0.58 else "female"
    while True:
        name, sur_py, given_py = person_name(rng, gender)
        if name not in used_names:
            used_names.add(name)
            break
    region = pick(rng, REGIONS)
    born = birth_date(rng)
    industry = industry_for(rng, "individual", region)
    income = int(round(min(400_000, max(30_000, rng.lognormvariate(11.4, 0.55))), -2))
    row = {
        "kind": "individual",
        "name": name,
        "resident_id": resident_id(rng, region, born, gender),
        "gender": gender,
        "mobile": mobile(rng, used_mobiles),
    }
    if rng.random() < 0.33:
        local = rng.choice((f"{sur_py}{given_py}", f"{given_py}.{sur_py}",
                            f"{sur_py}{given_py}{born:%y}", f"{sur_py}_{given_py}{born:%m%d}"))
        row["email"] = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    rural = industry == "agriculture" and (not region.startswith("1401")
                                           or int(region[4:]) >= 21)
    row |= {
        "region": region,
        "address": home_address(rng, region, rural),
        "industry": industry,
        "annual_income": money(income),
        "source": pick(rng, SOURCES),
    }
    if rng.random() < 0.4:  # tenant custom fields
        row["wechat_id"] = "wx_" + ascii_id(rng, rng.randint(6, 10))
        wish = int(round(income * rng.uniform(0.3, 1.2), -4))
        row["credit_limit_wish"] = money(min(300_000, max(10_000, wish)))
    return row


def company(rng: random.Random, used_mobiles: set[str], used_names: set[str]) -> dict:
    region = pick(rng, REGIONS)
    industry = industry_for(rng, "company", region)
    while True:
        name, brand_py = company_name(rng, region, industry)
        if name not in used_names:
            used_names.add(name)
            break
    income = int(round(min(30_000_000, max(500_000, rng.lognormvariate(14.9, 0.75))), -3))
    row = {
        "kind": "company",
        "name": name,
        "credit_code": credit_code(rng, region),
        "legal_representative": person_name(rng, "male" if rng.random() < 0.8 else "female")[0],
        "mobile": mobile(rng, used_mobiles),
    }
    if rng.random() < 0.33:
        local = rng.choice(("info", "office", "caiwu", "sales")) + "." + brand_py
        row["email"] = f"{local}@{rng.choice(EMAIL_DOMAINS)}"
    row |= {
        "region": region,
        "address": business_address(rng, region, industry),
        "industry": industry,
        "annual_income": money(income),
        "source": pick(rng, SOURCES),
    }
    return row


# --- checks -------------------------------------------------------------------------------


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def verify(rows: list[dict]) -> None:
    """Every identifier passes core.validators; the record shapes match the brief."""
    mobiles = [r["mobile"] for r in rows]
    assert len(set(mobiles)) == len(mobiles), "duplicate mobile"
    emails = [r["email"] for r in rows if "email" in r]
    assert len(set(emails)) == len(emails), "duplicate email"
    for r in rows:
        assert set(r) <= ALLOWED_KEYS and None not in r.values(), r
        assert r["region"] in SHANXI and not r["region"].endswith("00"), r
        assert check_mobile(r["mobile"]) == r["mobile"] and r["mobile"][:3] in MOBILE_PREFIXES
        assert r["industry"] in INDUSTRY_WEIGHTS["individual"] and r["source"] in SOURCES
        assert r["address"].startswith(region_name(r["region"])), r
        income = Decimal(r["annual_income"])
        assert isinstance(r["annual_income"], str) and r["annual_income"] == f"{income:.2f}"
        if "email" in r:
            assert r["email"].isascii() and r["email"].endswith(EMAIL_DOMAINS)
        if r["kind"] == "individual":
            rid = r["resident_id"]
            assert check_resident_id(rid, today=BUSINESS_DATE) == rid
            assert rid[:6] == r["region"]
            assert 22 <= age_on(resident_id_birth_date(rid), BUSINESS_DATE) <= 60, rid
            assert r["gender"] == ("male" if int(rid[16]) % 2 else "female"), rid
            assert 30_000 <= income <= 400_000
            assert ("wechat_id" in r) == ("credit_limit_wish" in r)
            if "wechat_id" in r:
                assert r["wechat_id"].startswith("wx_") and 6 <= len(r["wechat_id"]) - 3 <= 10
                assert 10_000 <= Decimal(r["credit_limit_wish"]) <= 300_000
        else:
            code = r["credit_code"]
            assert check_credit_code(code) == code and code[:4] == "9114"
            assert code[2:8] == r["region"]
            assert 500_000 <= income <= 30_000_000
            assert "resident_id" not in r and "wechat_id" not in r


SOUTH = {"1404", "1405", "1408", "1410"}  # Changzhi, Jincheng, Yuncheng, Linfen


def main() -> None:
    rng = random.Random(SEED)
    used_mobiles: set[str] = set()
    used_names: set[str] = set()
    rows = [individual(rng, used_mobiles, used_names) for _ in range(N_INDIVIDUALS)]
    rows += [company(rng, used_mobiles, used_names) for _ in range(N_COMPANIES)]
    rng.shuffle(rows)
    verify(rows)
    for r in rows:  # southern Shanxi belongs to the Yuncheng branch's officer
        r["owner"] = "officer2" if r["region"][:4] in SOUTH else "officer"

    header = ("# Synthetic demo customers: generated by generate.py (seed "
              f"{SEED}); do not edit by hand.\n")
    OUT.write_text(header + yaml.safe_dump(rows, allow_unicode=True, sort_keys=False),
                   encoding="utf-8")

    n_ind = sum(r["kind"] == "individual" for r in rows)
    print(f"wrote {OUT.relative_to(OUT.parents[2])}: {len(rows)} customers "
          f"({n_ind} individuals, {len(rows) - n_ind} companies), "
          f"{sum('email' in r for r in rows)} with email, "
          f"{sum('wechat_id' in r for r in rows)} with custom fields; "
          "all resident IDs, credit codes and mobiles valid")


if __name__ == "__main__":
    main()
