"""Tests for nlp.normalize: HTML, NFKC, links, repost chains and hostile input."""

from __future__ import annotations

import time

from nlp.normalize import MAX_INPUT_CHARS, normalize


def test_full_width_becomes_half_width():
    result = normalize("ＱＣ５续航１２０公里！")
    assert result.text == "QC5续航120公里!"


def test_img_alt_kept_as_emoticon():
    result = normalize('车机又死机了<img src="x.png" alt="[怒]" title="[怒]">')
    assert result.text == "车机又死机了[怒]"
    assert result.emoticons == {"怒": 1}


def test_html_tags_stripped_and_entities_unescaped():
    result = normalize("<p>续航&nbsp;缩水&amp;掉电</p><br/><b>QC7</b>")
    assert "<" not in result.text
    assert "缩水&掉电" in result.text
    assert result.text.endswith("QC7")


def test_script_and_style_contents_dropped():
    raw = "前<script>alert('x')</script>中<style>p{color:red}</style>后"
    result = normalize(raw)
    assert result.text == "前 中 后"


def test_unterminated_script_drops_the_rest():
    result = normalize("正文<script>var a = 1; 还有很多")
    assert result.text == "正文"


def test_escaped_script_payload_is_stripped():
    result = normalize("&lt;script&gt;alert(1)&lt;/script&gt;QC5")
    assert "script" not in result.text
    assert "QC5" in result.text


def test_zero_width_and_control_characters_removed():
    result = normalize("启\u200b程\u200dQC\ufeff5\x00\x07好")
    assert result.text == "启程QC5好"


def test_newlines_and_tabs_become_single_spaces():
    result = normalize("投诉要求:退款\r\n投诉对象:\t门店")
    assert result.text == "投诉要求:退款 投诉对象: 门店"


def test_links_moved_out_of_text():
    result = normalize("看这里 https://example.com/a?b=1 还有 http://t.cn/A6xyz 结束")
    assert result.links == ("https://example.com/a?b=1", "http://t.cn/A6xyz")
    assert "http" not in result.text
    assert result.text == "看这里 还有 结束"


def test_link_placeholders_dropped():
    result = normalize("车机又黑屏了 O网页链接 查看图片 全文链接")
    assert result.text == "车机又黑屏了"


def test_hashtags_kept_and_collected():
    result = normalize("#启程QC5降价# 刚提车就降价,#老车主怎么办#")
    assert result.hashtags == ("启程QC5降价", "老车主怎么办")
    assert "#启程QC5降价#" in result.text


def test_full_width_hash_and_at_are_recognised():
    result = normalize("＃启程QC7＃ ＠启程汽车 还我功能")
    assert result.hashtags == ("启程QC7",)
    assert "启程汽车" in result.mentions


def test_mentions_collected_but_not_emails():
    result = normalize("@启程汽车 @启程汽车客服 请回复 owner@example.com")
    assert result.mentions == ("启程汽车", "启程汽车客服")


def test_emoticons_counted():
    result = normalize("呵呵[微笑][微笑] 又坏了[允悲][doge]")
    assert result.emoticons == {"微笑": 2, "允悲": 1, "doge": 1}


def test_repost_chain_split_into_own_words_and_quoted():
    result = normalize("同款+1,太离谱//@车主小王:QC7车机黑屏三次了//@路人甲:转发微博")
    assert result.text == "同款+1,太离谱"
    assert result.quoted == "@车主小王:QC7车机黑屏三次了//@路人甲:转发微博"
    assert result.mentions == ("车主小王", "路人甲")


def test_repost_without_own_words():
    result = normalize("//@车主小王:QC7又趴窝了")
    assert result.text == ""
    assert result.quoted == "@车主小王:QC7又趴窝了"


def test_truncation_marks_set_truncated():
    for raw in (
        "QC5续航真的不行…全文",
        "QC5续航真的不行...全文",
        "QC5续航 展开全文",
        "QC5续航... 展开",
    ):
        result = normalize(raw)
        assert result.truncated, raw
        assert "全文" not in result.text, raw


def test_ordinary_endings_are_not_truncation():
    for raw in ("工作还没展开", "请阅读全文", "QC5续航不错"):
        assert not normalize(raw).truncated, raw


def test_traditional_characters_mapped():
    result = normalize("已經向啟程正式投訴,要求退還定金,消委會受理")
    assert result.text == "已经向启程正式投诉,要求退还定金,消委会受理"


def test_traditional_car_word_mapped():
    assert normalize("我的啟程車又壞了").text == "我的启程车又坏了"


def test_empty_text():
    result = normalize("")
    assert result.text == ""
    assert result.quoted == ""
    assert not result.truncated


def test_only_invisible_characters():
    result = normalize("\u200b\u200c\x00\n\t ")
    assert result.text == ""


def test_two_megabyte_text_is_fast_and_cut():
    raw = ("QC7车机黑屏<b>死机</b>了\u200b[怒] #话题# @某人 http://x.cn/a " * 50_000)[
        : 2 * 1024 * 1024
    ]
    start = time.perf_counter()
    result = normalize(raw)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.5
    assert result.truncated
    assert len(result.text) <= MAX_INPUT_CHARS


def test_two_megabyte_of_angle_brackets_is_fast():
    raw = "<" * (2 * 1024 * 1024)
    start = time.perf_counter()
    normalize(raw)
    assert time.perf_counter() - start < 0.5


def test_many_unclosed_scripts_are_fast():
    raw = "<script>" * 200_000
    start = time.perf_counter()
    result = normalize(raw)
    assert time.perf_counter() - start < 0.5
    assert "script" not in result.text


def test_hostile_patterns_are_fast():
    hostile = {
        "dots": "." * (2 * 1024 * 1024),
        "unclosed alt quotes": "<img alt='x" * 200_000,
        "unclosed comments": "<!--" * 500_000,
        "hashes": "#" * (2 * 1024 * 1024),
        "at signs": "@" * (2 * 1024 * 1024),
        "digits": "9" * (2 * 1024 * 1024),
    }
    for name, raw in hostile.items():
        start = time.perf_counter()
        normalize(raw)
        assert time.perf_counter() - start < 0.5, name
