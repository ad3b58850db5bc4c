"""The fairness terms on the whole training split (`fairness_rows="pool"`): under sampling bias
they read rows the biased sampling dropped (inputs and S, no labels); wherever the pool holds no
such row, training is bit-identical to reading the labelled rows."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

import fairviz.train as T
import fairviz.train._loop as loop
from fairviz.cli import main
from fairviz.cli import train as cli_train
from fairviz.data import loader
from fairviz.methods import FAIRNESS_ROWS
from fairviz.runs import load_run
from fairviz.train import TrainConfig, prepared_from_features, train
from fairviz.train._loop import fit
from tests.test_train import tiny_config, tiny_features
from tests.test_train_kgroups import tiny_features_k


def _same_run(a, b) -> None:
    np.testing.assert_array_equal(a.predictions["score"].to_numpy(), b.predictions["score"].to_numpy())
    untimed = [[{k: v for k, v in rec.items() if k != "seconds"} for rec in run.history] for run in (a, b)]
    assert untimed[0] == untimed[1]
    for key, value in a.state_dict.items():
        assert torch.equal(value, b.state_dict[key]), key


def test_rater_bias_pool_equals_labelled_bit_for_bit():
    # label mode keeps every training row: the pool is the labelled set, nothing may change
    feats = tiny_features()
    runs = [train(tiny_config("fairoffset", lambda_sw=1.0, fairness_rows=rows), features=feats)
            for rows in ("labelled", "pool", "auto")]
    assert runs[0].info["n_pool"] == runs[0].info["n_train"]
    _same_run(runs[0], runs[1])
    _same_run(runs[0], runs[2])


def test_sample_bias_pool_equal_to_labelled_rows_is_bit_identical():
    # the same check where the rows were subsampled but the pool is set to the labelled rows
    cfg = tiny_config("fairoffset", bias_mode="sample", lambda_sw=1.0, fairness_rows="pool")
    data = prepared_from_features(tiny_features(), cfg)
    assert data.unlabelled_pool
    same = dataclasses.replace(data, pool_idx=data.train_idx)
    assert not same.unlabelled_pool
    _same_run(fit(dataclasses.replace(cfg, fairness_rows="labelled"), same), fit(cfg, same))


def test_zero_weight_reads_no_pool():
    # fairoffset at weight 0 is the offset alone: no pool batch joins the forward pass
    feats = tiny_features()
    runs = [train(tiny_config("fairoffset", bias_mode="sample", lambda_sw=0.0, fairness_rows=rows), features=feats)
            for rows in ("labelled", "pool")]
    _same_run(*runs)


def _spy(monkeypatch):
    """Record, per step, the data rows each forward pass read and the batch the fairness terms saw."""
    seen = {"rows": [], "fair": []}
    iter_batches, loss_terms = loader.iter_batches, loop.loss_terms

    def spy_iter(video, mfcc, text, row_batches, device):
        seen["rows"].extend(np.asarray(r) for r in row_batches)
        return iter_batches(video, mfcc, text, row_batches, device)

    def spy_terms(method, inp, cfg):
        seen["fair"].append(inp)
        return loss_terms(method, inp, cfg)

    monkeypatch.setattr(loader, "iter_batches", spy_iter)
    monkeypatch.setattr(loop, "loss_terms", spy_terms)
    return seen


@pytest.mark.parametrize("features", [tiny_features, tiny_features_k], ids=["k2", "k4"])
def test_sample_bias_fairness_term_reads_unlabelled_pool_rows(monkeypatch, features):
    feats = features()
    cfg = tiny_config("fairoffset", bias_mode="sample", lambda_sw=1.0)  # "auto": the pool for fairoffset
    data = prepared_from_features(feats, cfg)
    seen = _spy(monkeypatch)
    run = fit(cfg, data)
    assert run.info["n_pool"] > run.info["n_train"]
    labelled, pool = set(data.train_idx.tolist()), set(data.pool_idx.tolist())
    fair_rows = []
    for rows, fair in zip(seen["rows"], seen["fair"]):
        n_fair = fair.score.shape[0]
        assert fair.y is None  # no label of the pool batch reaches the loss
        assert set(rows[:-n_fair].tolist()) <= labelled
        assert set(rows[-n_fair:].tolist()) <= pool
        np.testing.assert_array_equal(fair.s.numpy(), data.group[rows[-n_fair:]])
        assert len(np.unique(fair.s.numpy())) == int(data.group.max()) + 1  # every group in each batch
        fair_rows.extend(rows[-n_fair:].tolist())
    assert set(fair_rows) - labelled  # rows only the pool holds: the term does not see labelled rows only
    assert np.isfinite(run.history[-1]["sw1"]) and np.size(run.info["group_offset"]) == int(data.group.max())


def test_labelled_rows_keep_the_fairness_term_on_the_labelled_batch(monkeypatch):
    cfg = tiny_config("fairoffset", bias_mode="sample", lambda_sw=1.0, fairness_rows="labelled")
    data = prepared_from_features(tiny_features(), cfg)
    seen = _spy(monkeypatch)
    fit(cfg, data)
    for rows, fair in zip(seen["rows"], seen["fair"]):
        assert fair.y is not None and fair.score.shape[0] == len(rows)
        assert set(rows.tolist()) <= set(data.train_idx.tolist())


def test_fairness_rows_resolution_and_messages():
    assert FAIRNESS_ROWS == ("auto", "labelled", "pool")
    assert TrainConfig(method="fairoffset").pool_fairness()
    assert not TrainConfig(method="fairoffset", fairness_rows="labelled").pool_fairness()
    assert not TrainConfig(method="fairoffset", s_fraction=0.5).pool_fairness()  # auto falls back
    assert not TrainConfig(method="ours").pool_fairness()
    assert TrainConfig(method="mmd", fairness_rows="pool").pool_fairness()
    with pytest.raises(ValueError, match=r"fairness_rows must be one of .*got 'all'"):
        TrainConfig(method="fairoffset", fairness_rows="all")
    for method in ("vanilla", "balancing", "dro", "arl"):
        with pytest.raises(ValueError, match=f"method '{method}' has none"):
            TrainConfig(method=method, fairness_rows="pool")
    with pytest.raises(ValueError, match=r"needs every training row's group \(s_fraction 1\)"):
        TrainConfig(method="fairoffset", fairness_rows="pool", s_fraction=0.5)


def test_cli_fairness_rows_flag_is_stored_in_the_run(monkeypatch, tmp_path, capsys):
    assert cli_train.FAIRNESS_ROWS_CHOICES == FAIRNESS_ROWS
    assert cli_train.DEFAULTS["fairness_rows"] == TrainConfig().fairness_rows
    monkeypatch.setattr(T, "load_features", lambda cfg, progress=None: tiny_features())
    out = tmp_path / "fo"
    rc = main(["train", "--method", "fairoffset", "--bias-mode", "sample", "--fairness-rows", "labelled",
               "--epochs", "1", "--batch-size", "16", "--n-boot", "10", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert json.loads((out / "config.json").read_text())["train"]["fairness_rows"] == "labelled"
    assert load_run(out).config.fairness_rows == "labelled"
    capsys.readouterr()
    rc = main(["train", "--method", "vanilla", "--fairness-rows", "pool", "--out", str(tmp_path / "v"), "--no-progress"])
    assert rc == 2
    assert "error: fairness_rows='pool' needs a fairness term that reads scores and S only" in capsys.readouterr().err
