"""nmt.compat against the installed libraries: each private internal nmt uses still behaves as
nmt assumes. A failure here means a library changed under nmt: update nmt/compat.py (and the
cap in pyproject.toml), not this test."""
import inspect

import pytest
import torch
from torch import nn

from nmt import compat


@pytest.mark.parametrize("cls", [nn.GRU, nn.RNN])
def test_rnn_kernel_equals_the_module_on_the_same_weights(cls):
    torch.manual_seed(0)
    rnn = cls(6, 5, num_layers=1, batch_first=True)
    x, h0 = torch.randn(3, 7, 6), torch.zeros(1, 3, 5)
    weights = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    expected, _ = rnn(x, h0)
    assert torch.allclose(compat.rnn_one_direction(rnn, x, h0, weights, False), expected, atol=1e-6), \
        "torch's GRU/RNN kernel no longer takes (input, hx, params, has_biases, num_layers, dropout, train, " \
        "bidirectional, batch_first): update nmt/compat.py"


def test_cpu_probes_exist_and_answer():
    missing = [name for name in compat.CPU_BF16_PROBES if not callable(getattr(torch.cpu, name, None))]
    assert not missing, f"torch.cpu lost {missing}: train.precision=auto would fall back to fp32 everywhere; " \
                        "update nmt/compat.py"
    assert isinstance(compat.cpu_has_native_bf16(), bool)


def test_state_json_is_what_datasets_writes_and_views_read_in_order(tmp_path):
    import datasets
    import pyarrow as pa

    from nmt.data.store import ArrowSplitWriter

    schema = pa.schema([("x", pa.int32())])
    ours = ArrowSplitWriter(tmp_path / "ours", schema)
    ours.write(pa.RecordBatch.from_arrays([pa.array([10, 11, 12, 13], pa.int32())], schema=schema))
    ours.close("fp")
    theirs = tmp_path / "theirs"
    datasets.Dataset(pa.table({"x": pa.array([1], pa.int32())})).save_to_disk(str(theirs))
    import json

    written = json.loads((tmp_path / "ours" / "state.json").read_text())
    reference = json.loads((theirs / "state.json").read_text())
    assert set(written) == set(reference), "datasets' state.json changed its keys: update nmt/compat.py"
    loaded = datasets.load_from_disk(str(tmp_path / "ours"))
    assert loaded["x"] == [10, 11, 12, 13]
    view = loaded.select([3, 0, 2])
    assert compat.dataset_rows(view).column("x").to_pylist() == [13, 10, 12], \
        "a selected view's row indices moved: update nmt.compat.dataset_rows"


def test_h11_protocol_has_what_the_server_subclass_uses():
    cls = compat.h11_protocol_class()
    source = inspect.getsource(cls)
    absent = [name for name in compat.H11_USED if not hasattr(cls, name) and f"self.{name}" not in source]
    assert not absent, f"uvicorn's H11Protocol lost {absent}: update nmt/inference/server/limits.py and nmt/compat.py"
    from uvicorn.protocols.http.h11_impl import RequestResponseCycle

    assert "more_body" in inspect.getsource(RequestResponseCycle.__init__)
