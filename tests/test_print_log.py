"""Tests of verbose=2: skorch's table, short and in plain text when not on a terminal."""

import sys

import pytest
from sklearn.datasets import load_digits

from sk_adareg import AdaRegClassifier
from sk_adareg.callbacks import DIAGNOSTIC_KEYS, EpochTable

ROW = {"epoch": 2, "train_loss": 0.5, "train_loss_best": True, "valid_loss": 0.7,
       "valid_loss_best": False, "cov_update": True, "adareg_penalty": 3.0,
       "row_precision_min": 0.1, "dur": 0.25}


def test_verbose_2_prints_short_plain_lines(capsys):
    X, y = load_digits(n_class=3, return_X_y=True)
    clf = AdaRegClassifier(hidden_layer_sizes=(8,), max_epochs=3, cov_update_every=2,
                           early_stopping=True, n_iter_no_change=10, verbose=2,
                           random_state=0).fit(X[:90] / 16, y[:90])
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    # pytest's capture is not a terminal: no colour codes.
    assert "\x1b[" not in out
    assert max(len(line) for line in lines) < 100
    assert lines[0].split() == ["epoch", "cov_update", "train_data_loss", "train_loss",
                                "valid_loss", "valid_score", "dur"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "2", "3"]
    assert "+" in lines[3].split()  # epoch 2 updated the precisions
    # The diagnostics are left out of the table, not out of the history.
    assert "row_precision_min" in clf.history_[-1] and "adareg_penalty" in clf.history_[-1]


@pytest.mark.parametrize("isatty, colored", [(True, True), (False, False)])
def test_colour_only_on_a_terminal(monkeypatch, isatty, colored):
    monkeypatch.setattr(sys, "stdout", type("Stream", (), {"isatty": lambda self: isatty})())
    text = EpochTable().initialize().table(ROW)
    assert ("\x1b[" in text) == colored
    assert "0.5000" in text and "adareg_penalty" not in text and "row_precision" not in text


def test_colour_switch_and_other_sinks():
    assert "\x1b[" in EpochTable(color=True).initialize().table(ROW)
    assert "\x1b[" not in EpochTable(color=False).initialize().table(ROW)
    lines = []
    table = EpochTable(sink=lines.append, keys_ignored="valid_loss").initialize()
    assert "\x1b[" not in table.table(ROW)  # a logger gets plain text
    assert "valid_loss" not in table.table(ROW)
    assert table.keys_ignored_ >= set(DIAGNOSTIC_KEYS)
    assert all(key in table.table(ROW) for key in ("epoch", "cov_update", "dur"))
