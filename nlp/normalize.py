"""Turn raw post text into the plain text the classifier reads.

The steps run in a fixed order: cap the length, strip HTML, apply Unicode NFKC,
drop format and control characters, map traditional characters, pull out
links, then split the Weibo repost chain and collect hashtags, mentions and
emoticon codes. Every pattern is compiled once at import.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata
from collections import Counter

from items import NormalizedText

# Longer input is cut before any work. The bound is an estimate, well above
# ordinary post lengths, and each later step is linear in it, so a 2 MB payload
# costs no more than a 50,000-character one. A cut text is marked truncated.
MAX_INPUT_CHARS = 50_000

_SCRIPT_OR_STYLE = re.compile(
    r"<(script|style)\b[^>]*>.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
# Bounded repeats keep a page of unclosed tags or quotes linear to scan.
_IMG_WITH_ALT = re.compile(
    r"<img\b[^<>]{0,500}?\balt\s*=\s*([\"'])([^\"'<>]{0,40})\1[^<>]{0,500}>",
    re.IGNORECASE,
)
_BLOCK_TAG = re.compile(
    r"</?(?:br|p|div|li|tr|td|h[1-6]|blockquote)\b[^>]*>", re.IGNORECASE
)
_ANY_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")

_LINK = re.compile(
    r"(?:https?://|www\.)[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+"
    r"|\bt\.cn/[A-Za-z0-9]+",
    re.IGNORECASE,
)
_LINK_PLACEHOLDER = re.compile(r"O?网页链接|查看图片|全文链接")
_REPOST_SPLIT = re.compile(r"//\s*@")
_MENTION = re.compile(r"(?<![\w.])@([\w\-]{1,30})")
_HASHTAG = re.compile(r"#([^#\s][^#\n]{0,39})#")
_EMOTICON = re.compile(r"\[([\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]{0,7})\]")
# "展开" and "全文" alone end many ordinary sentences, so they count as a
# truncation mark only after an ellipsis or a space.
_TRUNCATION_MARK = re.compile(
    r"(?:(?:\.{2,}|…)\s*(?:展开全文|全文|展开)|\s(?:全文|展开)|展开全文)\s*[>》∨]?\s*$"
)
_SPACES = re.compile(r"\s+")


def _format_and_control_table() -> dict[int, str | None]:
    """Map every format (Cf) and control (Cc) character to removal.

    Tabs, line and paragraph breaks become spaces so that words stay apart.
    """
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in ("Cf", "Cc"):
            table[code] = None
    for code in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):
        table[code] = " "
    return table


_INVISIBLE = _format_and_control_table()
# Most posts contain none of these characters, so a search is cheaper than
# translating every post.
_INVISIBLE_CHARS = re.compile(
    "[" + "".join(f"\\U{code:08x}" for code in sorted(_INVISIBLE)) + "]"
)

# NOTE: traditional characters are mapped one by one with this table of the
# characters that occur in cue words, brand names and common function words.
# It is not a full conversion (no OpenCC, no phrase-level variants), so rare
# traditional characters stay as they are and may miss a cue.
_TRADITIONAL = (
    "啟启 啓启 訴诉 車车 還还 會会 經经 門门 機机 維维 權权 聯联 "
    "師师 賠赔 償偿 換换 檢检 測测 電电 視视 臺台 記记 報报 導导 "
    "簽签 質质 問问 題题 費费 錢钱 萬万 塊块 處处 應应 態态 惡恶 "
    "騙骗 隱隐 瞞瞒 虛虚 傳传 條条 協协 監监 長长 說说 話话 設设 "
    "計计 險险 煙烟 燒烧 剎刹 靈灵 斷断 傷伤 氣气 滿满 謝谢 壞坏 "
    "後后 們们 給给 個个 這这 麼么 沒没 來来 對对 時时 間间 為为 "
    "開开 關关 發发 現现 過过 於于 與与 從从 讓让 認认 證证 據据 "
    "點点 讚赞 贊赞 優优 驗验 實实 際际 單单 號号 線线 網网 體体 "
    "頭头 動动 續续 樁桩 輛辆 輪轮 異异 響响 聲声 訂订 銷销 貨货 "
    "約约 醫医 診诊 務务 員员 總总 廠厂 產产 罰罚 請请 願愿 嗎吗 "
    "貓猫 橫横 託托 擋挡 嚇吓 樣样 當当 裡里 裏里 舊旧 買买 賣卖 "
    "價价 貴贵 壓压 鐘钟 內内 兩两 幾几 數数 決决 結结 論论 補补 "
    "貼贴 誤误 糾纠 紛纷 違违 規规 則则 書书 寫写 復复 覆复 盡尽 "
    "儘尽 錯错 卻却 餘余 漲涨 虧亏 頓顿 準准 備备 戶户 廣广 緊紧 "
    "辦办 團团 隊队 駕驾 鄰邻 區区 邊边 衛卫 專专 業业 級级 療疗 "
    "屆届 節节 類类 歸归 辭辞 絕绝 難难 顧顾 軟软 鎖锁 轉转 彎弯 "
    "燈灯 儀仪 錶表 噴喷 鏽锈 銹锈 紅红 綠绿 極极 護护 鬧闹 訊讯 "
    "紀纪 錄录 張张 陳陈 劉刘 趙赵 楊杨 黃黄 頁页 聽听 講讲 讀读 "
    "誰谁 謊谎 詐诈 談谈 調调 諾诺 議议 責责 負负 貸贷 購购 資资 "
    "賬账 帳账 "
)
_TRADITIONAL_TABLE = {
    ord(pair[0]): pair[1]
    for pair in _TRADITIONAL.split()
    if len(pair) == 2 and pair[0] != pair[1]
}
_TRADITIONAL_CHARS = re.compile("[" + "".join(map(chr, _TRADITIONAL_TABLE)) + "]")


# Runs of digits are cut to this length: no amount, date or phone number is
# longer, and the amount patterns would otherwise try every start position of
# a long run, which is quadratic in its length.
MAX_DIGIT_RUN = 20
_LONG_DIGITS = re.compile(rf"\d{{{MAX_DIGIT_RUN + 1},}}")


def normalize(text: str) -> NormalizedText:
    """Normalise one post for the later stages; the original stays untouched.

    Links are moved out of the text, hashtags stay in it, and a Weibo repost
    chain (``own words//@someone:quoted``) is split so that ``text`` contains the
    author's own words and ``quoted`` the chain. ``truncated`` is set when the
    text ends with a platform truncation mark or was cut at MAX_INPUT_CHARS.
    """
    if not text:
        return NormalizedText(text="")
    cut = len(text) > MAX_INPUT_CHARS
    if cut:
        text = text[:MAX_INPUT_CHARS]

    if "<" in text or "&" in text:
        text = _strip_html(text)
    text = fold_characters(text)

    links = tuple(match.group(0) for match in _LINK.finditer(text))
    if links:
        text = _LINK.sub(" ", text)
    text = _LINK_PLACEHOLDER.sub(" ", text)
    text = _LONG_DIGITS.sub(lambda match: match.group(0)[:MAX_DIGIT_RUN], text)
    text = _SPACES.sub(" ", text).strip()

    text, truncated = _remove_truncation_mark(text)
    own, quoted = _split_repost_chain(text)
    whole = f"{own} {quoted}" if quoted else own
    return NormalizedText(
        text=own,
        quoted=quoted,
        emoticons=dict(Counter(_EMOTICON.findall(whole))),
        hashtags=_unique(m.strip() for m in _HASHTAG.findall(whole)),
        links=links,
        mentions=_unique(_MENTION.findall(whole)),
        truncated=truncated or cut,
    )


def fold_characters(text: str) -> str:
    """Apply NFKC, drop format and control characters and map traditional ones.

    Positions are not preserved. Brand words and cue phrases go through the
    same folding as post text, so that both sides compare equal.
    """
    text = unicodedata.normalize("NFKC", text)
    if _INVISIBLE_CHARS.search(text):
        text = text.translate(_INVISIBLE)
    if _TRADITIONAL_CHARS.search(text):
        text = text.translate(_TRADITIONAL_TABLE)
    return text


def _strip_html(text: str) -> str:
    text = html.unescape(text)
    if "<" not in text:
        return text
    text = _SCRIPT_OR_STYLE.sub(" ", text)
    text = _HTML_COMMENT.sub(" ", text)
    text = _IMG_WITH_ALT.sub(lambda m: m.group(2), text)
    text = _BLOCK_TAG.sub(" ", text)
    return _ANY_TAG.sub("", text)


def _remove_truncation_mark(text: str) -> tuple[str, bool]:
    # Only the tail can hold the mark; searching the whole text would try the
    # pattern at every position of a long run of dots.
    offset = max(0, len(text) - 16)
    match = _TRUNCATION_MARK.search(text, offset)
    if match is None:
        return text, False
    return text[: match.start()].rstrip(), True


def _split_repost_chain(text: str) -> tuple[str, str]:
    match = _REPOST_SPLIT.search(text)
    if match is None:
        return text, ""
    own = text[: match.start()].strip()
    quoted = text[match.end() - 1 :].strip()
    return own, quoted


def _unique(values) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))
