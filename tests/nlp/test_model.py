"""Tests for the trained classifier: training, the model file, cues and the CLI."""

from __future__ import annotations

import dataclasses
import json

import click
import joblib
import pytest
from click.testing import CliRunner
from conftest import make_item

import config
import pipeline
from items import KINDS
from nlp import Analyzer, model, modelfile
from nlp.model import ModelError
from nlp.normalize import normalize
from nlp.segment import Segmenter
from nlp.trained import TrainedClassifier
from nlp.training import (
    TrainingData,
    cross_validate,
    read_training,
    train,
    training_files,
)

# Invented posts about the fictional brand, ten per modelled kind. Short
# complaints and long grievances keep length from separating the two.
INVENTED = {
    "complaint": [
        "已向12315投诉,要求退车",
        "QC7刹车异响,已经投诉到消协,要求赔偿",
        "昨天在APP提交了工单投诉,要求书面说明",
        "QC5漏水,已打400正式投诉,要求换车",
        "律师函已发出,要求启程汽车退一赔三",
        "已经向市场监管局举报,要求退还定金",
        "QC9电池问题已在车质网投诉,要求更换电池包",
        "今天去门店书面投诉了,要求道歉和赔偿",
        "已起诉启程汽车,要求退车",
        "已投诉到12345,要求给个说法",
    ],
    "grievance": [
        "QC7车机又黑屏了,三天两头死机,开着真的很闹心,每次都要重启半天,太失望了",
        "QC5续航缩水得厉害,冬天掉电太快,后悔买了,真是无语",
        "QC9交付一拖再拖,等得人心累,销售一直敷衍,说好的时间又推迟了",
        "启程的售后态度太差了,QC7异响去了三次都没修好,心寒",
        "QC5车机卡顿,导航经常卡死,再不解决就去12315",
        "QC7刚提车就漏水,真是“靠谱”[微笑]",
        "QC9空调不制冷,热得要命,售后说等件,等了半个月了,烦死",
        "启程汽车的客服打不通,QC5充电慢的问题没人管,太气人了",
        "QC7的辅助驾驶老是退出,很危险,不满意",
        "买了QC5才两个月就降价两万,背刺老车主,生气",
    ],
    "praise": [
        "提了QC5三个月,续航扎实,很满意",
        "QC7开起来很舒服,隔音好,推荐",
        "启程的售后服务真贴心,QC9保养很快,点赞",
        "QC5车机流畅,好用,没毛病",
        "QC7的异响修好了,服务态度好,满意",
        "开QC9带全家出游,空间大,舒适,值了",
        "QC5性价比高,买对了",
        "启程汽车的销售很专业,QC7提车顺利,感谢",
        "QC9用了一年零故障,靠谱",
        "QC7的OTA升级后好多了,惊喜",
    ],
    "neutral": [
        "请问QC9现在落地价多少?",
        "QC5和QC7哪个更适合家用?",
        "启程汽车发布了QC7的新版本",
        "路上看到一辆QC9,颜色是蓝的",
        "启程汽车三月交付了两万台",
        "QC5的保养周期是多久?",
        "启程汽车官方公告:QC7召回部分车辆",
        "QC9试驾预约怎么弄?",
        "启程QC7今天上市,售价二十万起",
        "听说启程汽车要出新车了",
    ],
}


def invented_data() -> TrainingData:
    records = []
    for kind, texts in INVENTED.items():
        for number, text in enumerate(texts):
            records.append(
                {
                    "id": f"{kind}-{number}",
                    "source": "weibo",
                    "text": text,
                    "labels": {"kind": kind},
                }
            )
    return TrainingData(records=records, files=[])


@pytest.fixture(scope="module")
def trained(brand) -> TrainedClassifier:
    return train(invented_data(), brand)


@pytest.fixture(scope="module")
def model_file(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.joblib"
    return model.save(trained.classifier, trained.metadata, path)


def classify(classifier, brand, texts, platform="weibo"):
    analyzer = Analyzer(
        brand, config.DEFAULT_STRATEGIES["balanced"], "balanced", classifier=classifier
    )
    items = [make_item(text, platform=platform) for text in texts]
    return [a.classification for a in analyzer.analyse(items)]


PROBE_TEXTS = [
    "QC5已经投诉到12315,要求退款",
    "QC7车机又死机了,真烦",
    "QC9很好开,满意",
    "QC5多少钱?",
    "QC7 warranty claim filed with customer care, asking for a refund",
]


# Training


def test_training_is_deterministic(brand):
    first = train(invented_data(), brand)
    second = train(invented_data(), brand)
    rows = [(normalize(text).text, {}) for text in PROBE_TEXTS]
    first_probabilities = first.classifier.predict_proba(rows).tolist()
    assert first_probabilities == second.classifier.predict_proba(rows).tolist()
    assert classify(first, brand, PROBE_TEXTS) == classify(second, brand, PROBE_TEXTS)
    assert first.metadata["data_hash"] == second.metadata["data_hash"]


def write_jsonl(path, records, tail=""):
    lines = [json.dumps(record, ensure_ascii=False) for record in records]
    path.write_text("\n".join(lines) + "\n" + tail, encoding="utf-8")
    return path


def test_file_order_does_not_change_hash(tmp_path):
    records = invented_data().records
    first = write_jsonl(tmp_path / "a.jsonl", records[:20])
    second = write_jsonl(tmp_path / "b.jsonl", records[20:])
    forward = read_training([first, second])
    backward = read_training([second, first])
    assert forward.data_hash == backward.data_hash
    assert len(forward.records) == 40


def test_partly_written_line_skipped(tmp_path):
    records = invented_data().records
    path = write_jsonl(tmp_path / "growing.jsonl", records[:3], tail='{"id": "x", "te')
    data = read_training([path])
    assert len(data.records) == 3
    assert data.skipped == 1


def test_training_files_exclude_label_sets(tmp_path):
    (tmp_path / "training").mkdir()
    (tmp_path / "demo").mkdir()
    (tmp_path / "eval").mkdir()
    names = ("training/b.jsonl", "training/a.jsonl", "demo/posts.jsonl", "eval/d.jsonl")
    for name in names:
        (tmp_path / name).write_text("", encoding="utf-8")
    files = [path.relative_to(tmp_path).as_posix() for path in training_files(tmp_path)]
    assert files == ["training/a.jsonl", "training/b.jsonl", "demo/posts.jsonl"]


def test_training_rejects_missing_kind(brand):
    data = invented_data()
    data.records = [r for r in data.records if r["labels"]["kind"] != "praise"]
    with pytest.raises(ValueError, match="praise"):
        train(data, brand)


def test_metadata_records_versions_and_labels(trained):
    metadata = trained.metadata
    assert metadata["sklearn"] == modelfile.library_versions()["sklearn"]
    assert metadata["segmenter"] == Segmenter.engine_version()
    assert metadata["segmenter"].startswith("rjieba ")
    assert metadata["labels"] == ["complaint", "grievance", "neutral", "praise"]
    assert len(metadata["dictionary_hash"]) == 64
    assert len(metadata["data_hash"]) == 64
    assert metadata["trained_at"].endswith("+00:00")
    assert len(metadata["canaries"]) >= 5


def test_cross_validation_reports_figures(brand):
    result = cross_validate(invented_data(), brand)
    assert result.folds == 5
    assert 0.0 <= result.macro_f1 <= 1.0
    assert 0.0 <= result.calibration_error <= 1.0


# The model file


def test_save_load_round_trip(trained, model_file, brand):
    loaded = TrainedClassifier.load(model_file, brand)
    assert loaded.metadata["data_hash"] == trained.metadata["data_hash"]
    assert classify(loaded, brand, PROBE_TEXTS) == classify(trained, brand, PROBE_TEXTS)


def test_changed_dictionary_rejected(model_file, brand):
    extra = config.Competitor(
        name="新势力", models=tuple(f"X{number}" for number in range(19))
    )
    changed = dataclasses.replace(brand, competitors=(*brand.competitors, extra))
    with pytest.raises(ModelError, match="retrain with: python pipeline.py train"):
        TrainedClassifier.load(model_file, changed)


def test_missing_file_gives_model_error(tmp_path, brand):
    with pytest.raises(ModelError, match="not found.*retrain with"):
        TrainedClassifier.load(tmp_path / "absent.joblib", brand)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupted_file_gives_model_error(model_file, tmp_path, brand, damage):
    data = model_file.read_bytes()
    broken = tmp_path / "broken.joblib"
    if damage == "truncate":
        broken.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        broken.write_bytes(b"\x80\x04not a pickle at all" * 50)
    else:
        broken.write_bytes(b"")
    with pytest.raises(ModelError, match="retrain with"):
        TrainedClassifier.load(broken, brand)


def test_corrupted_payload_gives_model_error(model_file, tmp_path, brand):
    envelope = joblib.load(model_file)
    payload = envelope["payload"]
    envelope["payload"] = payload[:100] + b"\x00" * 64 + payload[164:]
    broken = tmp_path / "payload.joblib"
    joblib.dump(envelope, broken)
    hash_ = Segmenter.for_brand(brand).dictionary_hash
    with pytest.raises(ModelError, match="cannot load the classifier.*retrain with"):
        modelfile.load_pipeline(broken, hash_)
    # Scoring does not read the pipeline, so the job still loads the file.
    assert TrainedClassifier.load(broken, brand).scorer.classes


def test_pipeline_loads_from_the_file(trained, model_file, brand):
    hash_ = Segmenter.for_brand(brand).dictionary_hash
    pipeline, metadata = modelfile.load_pipeline(model_file, hash_)
    rows = [(normalize(text).text, {}) for text in PROBE_TEXTS]
    assert pipeline.predict_proba(rows).tolist() == (
        trained.classifier.predict_proba(rows).tolist()
    )
    assert metadata["data_hash"] == trained.metadata["data_hash"]


def test_broken_scorer_state_gives_model_error(model_file, tmp_path, brand):
    envelope = joblib.load(model_file)
    envelope["scorer"] = {**envelope["scorer"], "classes": None}
    broken = tmp_path / "scorer.joblib"
    joblib.dump(envelope, broken)
    with pytest.raises(ModelError, match="not a scorer state.*retrain with"):
        TrainedClassifier.load(broken, brand)


def test_model_file_of_the_earlier_format_rejected(model_file, tmp_path, brand):
    envelope = joblib.load(model_file)
    del envelope["scorer"]
    envelope["format"] = 1
    old = tmp_path / "old-format.joblib"
    joblib.dump(envelope, old)
    with pytest.raises(ModelError, match="not a model file of format 2.*retrain"):
        TrainedClassifier.load(old, brand)


def test_other_library_version_rejected(model_file, tmp_path, brand):
    envelope = joblib.load(model_file)
    envelope["metadata"] = {**envelope["metadata"], "sklearn": "0.1"}
    changed = tmp_path / "old.joblib"
    joblib.dump(envelope, changed)
    with pytest.raises(ModelError, match="sklearn 0.1.*retrain with"):
        TrainedClassifier.load(changed, brand)


@pytest.mark.parametrize(
    ("recorded", "message"),
    [
        ({"segmenter": "jieba 0.42.1"}, "segmenter jieba 0.42.1"),
        ({"segmenter": "rjieba 0.1.0"}, "segmenter rjieba 0.1.0"),
        ({"segmenter": None, "jieba": "0.42.1"}, "segmenter jieba 0.42.1"),
        ({"segmenter": None}, "lacks segmenter"),
    ],
)
def test_other_segmenter_rejected(model_file, tmp_path, brand, recorded, message):
    envelope = joblib.load(model_file)
    metadata = {**envelope["metadata"], **recorded}
    envelope["metadata"] = {k: v for k, v in metadata.items() if v is not None}
    changed = tmp_path / "segmenter.joblib"
    joblib.dump(envelope, changed)
    with pytest.raises(ModelError, match=f"{message}.*retrain with"):
        TrainedClassifier.load(changed, brand)


def test_changed_canary_rejected(model_file, tmp_path, brand):
    envelope = joblib.load(model_file)
    canaries = [dict(c) for c in envelope["metadata"]["canaries"]]
    other = next(k for k in ("praise", "neutral") if k != canaries[0]["kind"])
    canaries[0]["kind"] = other
    envelope["metadata"] = {**envelope["metadata"], "canaries": canaries}
    changed = tmp_path / "canary.joblib"
    joblib.dump(envelope, changed)
    with pytest.raises(ModelError, match="canary post.*retrain with"):
        TrainedClassifier.load(changed, brand)


@pytest.mark.parametrize("canary", [{"text": "x"}, "not a canary", {"kind": 1}])
def test_malformed_canary_rejected(model_file, tmp_path, brand, canary):
    envelope = joblib.load(model_file)
    canaries = [canary, *envelope["metadata"]["canaries"][1:]]
    envelope["metadata"] = {**envelope["metadata"], "canaries": canaries}
    changed = tmp_path / "canary.joblib"
    joblib.dump(envelope, changed)

    with pytest.raises(ModelError, match="invalid canary.*retrain with"):
        TrainedClassifier.load(changed, brand)


def test_canaries_match_after_load(model_file, brand):
    loaded = TrainedClassifier.load(model_file, brand)
    assert loaded.canary_predictions() == loaded.metadata["canaries"]


# Classifications


def test_padded_grievance_stays_grievance(trained, brand):
    base = "QC7车机又黑屏了,真是无语,太失望了"
    padding = ",导航也经常卡死,每次都要重启半天,开着真的很闹心"
    texts = [base + padding * times for times in (0, 1, 3, 8)]
    results = classify(trained, brand, texts)
    assert results[0].kind == "grievance"
    for result in results[1:]:
        assert result.kind != "complaint"
        assert result.kind == "grievance"


def test_every_prediction_has_cues(trained, brand):
    for result in classify(trained, brand, PROBE_TEXTS):
        assert result.cues, result
        assert any(cue.name.startswith("model:") for cue in result.cues), result
        assert 0.0 < result.confidence <= 1.0
        assert result.model_version.startswith("trained-")


def test_irrelevant_post_keeps_matcher_decision(trained, brand):
    [result] = classify(trained, brand, ["明天启程去旅行,坐火车回老家"])
    assert result.kind == "irrelevant"
    assert result.model_version == "lexicon-1"


def test_channels_only_for_complaints(trained, brand):
    texts = PROBE_TEXTS + ["QC5再不修好我就去12315"]
    for result in classify(trained, brand, texts):
        if result.kind != "complaint":
            assert result.channels == ()
        if result.kind not in ("grievance", "complaint"):
            assert result.demands == ()
            assert result.root_cause is None
        assert result.kind in KINDS


def test_complaint_keeps_lexicon_channels(trained, brand):
    [result] = classify(
        trained, brand, ["QC9漏水修了三次还漏,今天已向12315投诉,要求退车"]
    )
    assert result.kind == "complaint"
    assert result.channels == ("12315",)
    assert result.demands == ("return_car",)


def test_batch_lengths_must_match(trained):
    with pytest.raises(ValueError, match="lengths differ"):
        trained.classify_batch([normalize("QC7")], [], [])


# Command line


def test_train_command_writes_model(tmp_path, project_config):
    output = tmp_path / "trained.joblib"
    config_path = project_config.resolve("config.yaml")
    arguments = ["train", "--config", str(config_path), "--output", str(output)]
    result = CliRunner().invoke(pipeline.cli, [*arguments, "--no-corrections"])
    assert result.exit_code == 0, result.output
    assert output.exists()
    assert "cross-validated on the training data" in result.output
    assert f"model: {output}" in result.output
    TrainedClassifier.load(output, project_config.brand)


def test_job_trains_model_on_first_use(tmp_path, project_config):
    moved = dataclasses.replace(
        project_config, base_dir=str(tmp_path), classifier="trained"
    )
    classifier = pipeline.make_analyzer(moved).classifier
    assert isinstance(classifier, TrainedClassifier)
    assert (tmp_path / "data" / "model.joblib").exists()
    again = pipeline.make_analyzer(moved).classifier
    assert again.metadata["data_hash"] == classifier.metadata["data_hash"]


def test_job_stops_on_broken_model(tmp_path, project_config):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model.joblib").write_bytes(b"not a model")
    moved = dataclasses.replace(
        project_config, base_dir=str(tmp_path), classifier="trained"
    )
    with pytest.raises(click.ClickException, match="retrain with"):
        pipeline.make_analyzer(moved)
    assert (tmp_path / "data" / "model.joblib").read_bytes() == b"not a model"


def test_save_into_folder_path_gives_model_error(trained, tmp_path):
    with pytest.raises(ModelError, match="cannot write the model file"):
        model.save(trained.classifier, trained.metadata, tmp_path)


def test_save_leaves_no_temporary_file(trained, tmp_path):
    path = tmp_path / "model.joblib"

    model.save(trained.classifier, trained.metadata, path)
    model.save(trained.classifier, trained.metadata, path)

    assert [p.name for p in tmp_path.iterdir()] == ["model.joblib"]
