"""Chinese capital numerals for money (大写金额), as written on contracts and bills.

A contract states the amount twice, in figures and in capitals, and the capitals are what
a court reads when the two disagree; so the converter must be exact and its rules fixed.
It follows the People's Bank of China's rules for writing amounts on bills
(《正确填写票据和结算凭证的基本规定》), choosing one spelling where they allow two:

- digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 within a group of four, 万 / 亿 / 万亿
  between groups; a leading ten is 壹拾 (10 -> 壹拾元整), never 拾;
- a run of zeros between two non-zero digits is written once as 零, after the 元 / 万 /
  亿 that ends a group when the run crosses one (107000 -> 壹拾万零柒仟元整,
  1000.05 -> 壹仟元零伍分, 1680.32 -> 壹仟陆佰捌拾元零叁角贰分); zeros at the end of
  the yuan and a group that is all zeros are not written (100000000 -> 壹亿元整);
- 整 follows the last unit when there are no 分 (元整 or 角整), never after 分;
- no yuan: the amount starts at 角 or 分 (0.01 -> 壹分); zero is 零元整.

The amount is money: a Decimal, an int or a decimal string, never a float, at least zero,
with no digits past the cent, below 10^16 yuan.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL_UNITS = ("", "拾", "佰", "仟")
GROUP_UNITS = ("", "万", "亿", "万")  # the fourth group is 万 of 亿 (万亿)
LIMIT = Decimal(10) ** 16
CENT = Decimal("0.01")


class NumeralError(ValueError):
    """An amount that has no capital form, said in zh-CN and en."""

    def __init__(self, zh: str, en: str, got: object) -> None:
        shown = f"{got!r}"[:60]
        self.zh = f"{zh}（收到 {shown}）"
        self.en = f"{en} (got {shown})"
        super().__init__(f"{self.zh} / {self.en}")


def _as_decimal(value: Decimal | int | str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float) or not isinstance(
            value, Decimal | int | str):
        raise NumeralError("金额须为 Decimal、整数或十进制字符串，不能是浮点数",
                           "the amount must be a Decimal, an int or a decimal string, "
                           "never a float", value)
    try:
        d = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise NumeralError("金额不是数字", "the amount is not a number", value) from None
    if not d.is_finite():
        raise NumeralError("金额不是有限数", "the amount is not a finite number", value)
    if d < 0:
        raise NumeralError("金额不能为负数", "the amount cannot be negative", value)
    if d >= LIMIT:
        raise NumeralError("金额须小于一亿亿元（10^16）",
                           "the amount must be below 10^16 yuan", value)
    if d != d.quantize(CENT):
        raise NumeralError("金额最多精确到分（两位小数）",
                           "the amount has digits past the cent (at most two decimals)",
                           value)
    return d


def amount_in_words(value: Decimal | int | str) -> str:
    """The amount in capitals (`Decimal("1234.56")` -> 壹仟贰佰叁拾肆元伍角陆分), without
    the 人民币 prefix (templates write 人民币（大写）… themselves)."""
    cents = int(_as_decimal(value) * 100)
    yuan, jiao, fen = cents // 100, cents // 10 % 10, cents % 10
    if cents == 0:
        return "零元整"
    out: list[str] = []
    zero = False  # zeros seen since the last digit written, to be said once as 零

    def digit(d: int, unit: str) -> None:
        nonlocal zero
        if d == 0:
            zero = zero or bool(out)
            return
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[d] + unit)

    if yuan:
        text = str(yuan)
        for i, ch in enumerate(text):
            group, pos = divmod(len(text) - 1 - i, 4)
            digit(int(ch), SMALL_UNITS[pos])
            if pos == 0 and group and yuan // 10 ** (4 * group) % 10000:
                unit = GROUP_UNITS[group]
                if group == 3 and yuan // 10 ** 8 % 10000 == 0:
                    unit = "万亿"
                out.append(unit)
        out.append("元")
    digit(jiao, "角")
    digit(fen, "分")
    if fen == 0:
        out.append("整")
    return "".join(out)
