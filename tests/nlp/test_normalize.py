"""Tests for nlp.normalize: HTML, NFKC, OpenCC, links, repost chains, hostile input."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import opencc
import pytest

import config
from config import Brand
from nlp import lexicon
from nlp.normalize import (
    MAX_INPUT_CHARS,
    PHRASE_ONLY_IGNORED,
    Normalizer,
    fold_characters,
    normalize,
    protected_names,
    to_simplified,
)


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


def test_opencc_converts_whole_traditional_post():
    result = normalize("蔚來ES6車機當機，剎車也有異音，客服說無法處理")
    assert result.text == "蔚来ES6车机当机,刹车也有异音,客服说无法处理"


def test_opencc_converts_phrases():
    assert to_simplified("據瞭解,車主回覆說頭髮") == "据了解,车主回复说头发"


def test_place_kept_while_ordinary_word_converted():
    normalizer = Normalizer(protected=("乾安",))
    assert normalizer.normalize("乾安的車很乾淨").text == "乾安的车很干净"


def test_unprotected_place_is_rewritten():
    # The conversion that protection exists for: OpenCC turns the county
    # 乾安 into 干安.
    assert normalize("乾安的車很乾淨").text == "干安的车很干净"


def test_protected_argument_of_normalize():
    result = normalize("乾安4S店的車機又黑屏", protected=("乾安",))
    assert result.text == "乾安4S店的车机又黑屏"


def test_brand_normalizer_keeps_configured_places(brand):
    assert "乾安" in brand.places
    result = Normalizer.for_brand(brand).normalize("乾安門店說車機沒問題,很乾脆")
    assert result.text == "乾安门店说车机没问题,很干脆"


def test_protected_names_cover_brand_competitors_places(brand):
    names = protected_names(brand)
    assert brand.name in names
    assert "啟程汽車" in names
    assert "QC7" in names
    assert "蔚来" in names
    assert "Model Y" in names
    assert "乾安" in names


def test_traditional_protected_name_kept_as_written():
    brand = Brand(name="啟程汽車", aliases=("啟程",), places=("乾安",))
    normalizer = Normalizer.for_brand(brand)
    assert normalizer.normalize("啟程汽車的車機").text == "啟程汽車的车机"
    assert normalizer.normalize("啟程的售後").text == "啟程的售后"
    assert normalizer.normalize("启程汽车的车机").text == "启程汽车的车机"


def test_protected_name_in_simplified_text():
    # 乾 alone starts a conversion, which must leave the protected name alone.
    normalizer = Normalizer(protected=("乾安",))
    assert normalizer.to_simplified("乾安的车很干净") == "乾安的车很干净"
    assert normalizer.to_simplified("去乾安") == "去乾安"
    assert normalizer.to_simplified("乾县的车很干净") == "干县的车很干净"


def test_simplified_text_unchanged_by_conversion():
    texts = [
        "QC7车机黑屏三次了,4S店说没问题,什么情况",
        "车被打坏了,怎么办",
        "[怒]@启程汽车客服 #续航缩水# http://t.cn/A6xyz",
        "",
    ]
    for text in texts:
        # Returning the same object shows that OpenCC was not called.
        assert to_simplified(text) is text, text


def test_simplified_text_with_phrase_characters_unchanged():
    # 沈 and 覆 start a conversion (沈默 becomes 沉默), which leaves these alone.
    for text in ("沈阳的门店服务不错", "覆盖范围太小,信号不好"):
        assert to_simplified(text) == text


def test_cue_phrases_unchanged_by_conversion():
    for name, value in vars(lexicon).items():
        tables = value.values() if isinstance(value, dict) else [value]
        for table in tables:
            if not isinstance(table, tuple):
                continue
            for entry in table:
                if isinstance(entry, str):
                    assert to_simplified(entry) == entry, (name, entry)


def test_brand_words_fold_to_one_spelling():
    assert fold_characters("啟程汽車") == fold_characters("启程汽车") == "启程汽车"
    assert fold_characters("ＱＣ７") == "QC7"


OPENCC_DICT_TOOL = Path(opencc.__file__).parent / "clib" / "bin" / "opencc_dict"
OPENCC_DICTIONARIES = Path(opencc.__file__).parent / "clib" / "share" / "opencc"


@pytest.mark.skipif(
    not OPENCC_DICT_TOOL.exists(), reason="the opencc wheel has no opencc_dict tool"
)
def test_every_phrase_conversion_detected(tmp_path):
    """Each phrase of OpenCC's t2s dictionary converts as OpenCC converts it.

    A phrase whose changed characters are all common simplified ones (毛坏 to
    毛坯) may stay as it is: those characters start no conversion.
    """
    dump = tmp_path / "TSPhrases.txt"
    subprocess.run(
        [
            str(OPENCC_DICT_TOOL),
            *("-i", str(OPENCC_DICTIONARIES / "TSPhrases.ocd2")),
            *("-o", str(dump), "-f", "ocd2", "-t", "text"),
        ],
        check=True,
        capture_output=True,
    )
    converter = opencc.OpenCC("t2s")
    phrases = [line.split("\t")[0] for line in dump.read_text("utf-8").splitlines()]
    assert len(phrases) > 100
    for phrase in phrases:
        expected = converter.convert(phrase)
        changed = {a for a, b in zip(phrase, expected, strict=True) if a != b}
        result = to_simplified(phrase)
        if changed and changed <= set(PHRASE_ONLY_IGNORED):
            assert result in (phrase, expected)
        else:
            assert result == expected, phrase


def test_feed_title_img_alt_without_quotes():
    result = normalize('<img alt=[围观] src="x"/>车机又黑屏')
    assert result.text == "[围观]车机又黑屏"
    assert result.emoticons == {"围观": 1}


def test_feed_title_marker_removed():
    result = normalize("[围观][围观] - 转发 车机黑屏了")
    assert result.text == "车机黑屏了"
    assert result.quoted == ""
    assert result.emoticons == {"围观": 2}


def test_feed_title_marker_keeps_own_words():
    result = normalize("太离谱了 - 转发 车机黑屏了")
    assert result.text == "太离谱了 车机黑屏了"


def test_feed_repost_with_author_is_a_chain():
    result = normalize("太差了 - 转发 @车主小王: QC7又坏了")
    assert result.text == "太差了"
    assert result.quoted == "@车主小王: QC7又坏了"
    assert result.mentions == ("车主小王",)


def test_repost_adding_only_filler_has_no_own_words():
    for raw in (
        "转发微博//@车主小王:QC7又趴窝了",
        "轉發微博 //@车主小王:QC7又趴窝了",
        "[doge][doge]//@车主小王:QC7又趴窝了",
        "转发微博 [怒]//@车主小王:QC7又趴窝了",
        "😡😡//@车主小王:QC7又趴窝了",
        "转发微博",
    ):
        result = normalize(raw)
        assert result.text == "", raw


def test_repost_filler_keeps_emoticon_counts():
    result = normalize("[doge][doge]//@车主小王:QC7又趴窝了[怒]")
    assert result.text == ""
    assert result.emoticons == {"doge": 2, "怒": 1}


def test_emoticon_only_post_keeps_its_text():
    assert normalize("[怒][怒]").text == "[怒][怒]"


def test_repost_with_own_words_keeps_them():
    result = normalize("转发一下,同款问题//@车主小王:QC7又趴窝了")
    assert result.text == "转发一下,同款问题"


def write_config(tmp_path, places: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"brand: {{name: 启程汽车, places: {places}}}\n"
        "sources: [{name: demo, kind: replay, path: posts.jsonl}]\n"
        "alerts: {alert_levels: []}\n",
        encoding="utf-8",
    )
    return path


def test_places_loaded_from_config(tmp_path):
    brand = config.load(write_config(tmp_path, "[乾安, 乾县]")).brand
    assert brand.places == ("乾安", "乾县")
    assert Normalizer.for_brand(brand).normalize("乾县").text == "乾县"


def test_places_must_be_a_list(tmp_path):
    with pytest.raises(config.ConfigError, match=r"brand\.places: expected a list"):
        config.load(write_config(tmp_path, "乾安"))
