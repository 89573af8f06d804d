"""nmt.diagnose: the gradient reaching each source position, and gate saturation."""
import subprocess
import sys

import torch
from omegaconf import OmegaConf

from conftest import ROOT
from nmt.analysis.gradients import gate_saturation, gradient_norms
from nmt.config.schema import ModelConfig
from nmt.data.collate import collate
from nmt.data.vocab import EOS_ID, SOS_ID
from nmt.model import build_model


def model(**over):
    torch.manual_seed(0)
    cfg = OmegaConf.merge(OmegaConf.structured(ModelConfig), {"emb_dim": 16, "hidden_dim": 16, "dropout": 0.0,
                                                             "emb_dropout": 0.0, **over})
    return build_model(cfg, 30, 30, 0)


def batch(length=30, n=8):
    g = torch.Generator().manual_seed(1)
    return collate([(i, torch.randint(4, 30, (length,), generator=g),
                     torch.tensor([SOS_ID, *torch.randint(4, 30, (5,), generator=g).tolist(), EOS_ID]))
                    for i in range(n)])


def test_a_plain_rnn_without_attention_shows_the_vanishing_gradient():
    plain = gradient_norms(model(cell="rnn", attention="none", bidirectional=False), batch())
    assert len(plain) == 30 and all(g > 0 for g in plain)
    assert plain[0] < plain[-1] / 100  # the first piece hardly reaches the loss through 30 tanh steps
    both_ways = gradient_norms(model(cell="rnn", attention="none", bidirectional=True), batch())
    assert both_ways[15] < both_ways[0] / 10 and both_ways[15] < both_ways[-1] / 10  # the middle is starved
    attended = gradient_norms(model(cell="gru", attention="luong"), batch())
    assert min(attended) > max(attended) / 20  # attention gives every position a short path


def test_gate_saturation_for_gated_cells_only():
    gru = gate_saturation(model(cell="gru"), batch())
    lstm = gate_saturation(model(cell="lstm"), batch())
    assert set(gru) == {"reset", "update"} and set(lstm) == {"input", "forget", "output"}
    assert all(0.0 <= v <= 1.0 for v in [*gru.values(), *lstm.values()])
    assert gate_saturation(model(cell="rnn"), batch()) == {}
    assert gate_saturation(model(arch="transformer", heads=2, ff_dim=32), batch()) == {}


def test_diagnose_cli_on_two_checkpoints(tiny_checkpoint, tiny_transformer_checkpoint, tiny_prepared, tmp_path):
    png = tmp_path / "gradients.png"
    r = subprocess.run([sys.executable, "-m", "nmt.diagnose", f"diagnose.ckpts=[{tiny_checkpoint},{tiny_transformer_checkpoint}]",
                        f"prepared_dir={tiny_prepared}", f"diagnose.output={png}", f"hydra.run.dir={tmp_path / 'h'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["model", "first", "middle", "last", "min/max"]
    assert lines[1].startswith("tiny_run") and "reset" in lines[1]  # the GRU has gates
    assert lines[2].startswith("tiny_transformer_run") and lines[2].rstrip().endswith("-")
    assert png.stat().st_size > 10_000
