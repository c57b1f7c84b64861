import pytest
import torch
from skorch import NeuralNet

# The tests train tiny networks: one thread is faster than several, and far faster
# than two processes fighting over two cores.
torch.set_num_threads(1)


@pytest.fixture
def training_runs(monkeypatch):
    """How many times skorch's training loop was entered."""
    runs = []
    original = NeuralNet.fit_loop

    def recording(self, *args, **kwargs):
        runs.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(NeuralNet, "fit_loop", recording)
    return runs
