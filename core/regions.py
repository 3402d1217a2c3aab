"""Administrative regions (GB/T 2260): provinces, and the cities of Shanxi used by the demo.

Region fields store the six-digit code; validation checks the province prefix, because
county codes change every year and a lender must still accept an old address.
"""

from __future__ import annotations

PROVINCES: dict[str, str] = {
    "11": "北京市", "12": "天津市", "13": "河北省", "14": "山西省", "15": "内蒙古自治区",
    "21": "辽宁省", "22": "吉林省", "23": "黑龙江省", "31": "上海市", "32": "江苏省",
    "33": "浙江省", "34": "安徽省", "35": "福建省", "36": "江西省", "37": "山东省",
    "41": "河南省", "42": "湖北省", "43": "湖南省", "44": "广东省", "45": "广西壮族自治区",
    "46": "海南省", "50": "重庆市", "51": "四川省", "52": "贵州省", "53": "云南省",
    "54": "西藏自治区", "61": "陕西省", "62": "甘肃省", "63": "青海省", "64": "宁夏回族自治区",
    "65": "新疆维吾尔自治区", "71": "台湾省", "81": "香港特别行政区", "82": "澳门特别行政区",
}

# Shanxi (山西省): prefecture-level cities and some of their districts and counties.
SHANXI: dict[str, str] = {
    "140100": "太原市", "140105": "太原市小店区", "140106": "太原市迎泽区",
    "140107": "太原市杏花岭区", "140108": "太原市尖草坪区", "140109": "太原市万柏林区",
    "140110": "太原市晋源区", "140121": "太原市清徐县",
    "140200": "大同市", "140213": "大同市平城区", "140214": "大同市云冈区",
    "140300": "阳泉市", "140302": "阳泉市城区",
    "140400": "长治市", "140403": "长治市潞州区",
    "140500": "晋城市", "140502": "晋城市城区", "140581": "晋城市高平市",
    "140600": "朔州市", "140602": "朔州市朔城区",
    "140700": "晋中市", "140702": "晋中市榆次区", "140781": "晋中市介休市",
    "140800": "运城市", "140802": "运城市盐湖区", "140881": "运城市永济市",
    "140900": "忻州市", "140902": "忻州市忻府区",
    "141000": "临汾市", "141002": "临汾市尧都区", "141081": "临汾市侯马市",
    "141100": "吕梁市", "141102": "吕梁市离石区", "141182": "吕梁市汾阳市",
}


def region_name(code: str) -> str:
    """A readable name for a code: the known county or city, else the province."""
    return SHANXI.get(code) or SHANXI.get(code[:4] + "00") or PROVINCES.get(code[:2], code)


def region_label(code: str) -> str:
    """What a page shows for a region: `太原市小店区 (140105)`, or the code alone when no
    name is known."""
    name = region_name(code)
    return f"{name} ({code})" if name != code else code
