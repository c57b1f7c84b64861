"""Which weights carry a prior: sk_adareg._layers.resolve_adareg_layers."""

import pytest
from torch import nn

from sk_adareg._layers import resolve_adareg_layers


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3)
        self.conv2 = nn.Conv2d(4, 8, 3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))


@pytest.mark.parametrize("option, expected", [
    ("last", ["head.3.weight"]),
    ("linear", ["head.1.weight", "head.3.weight"]),
    ("conv", ["conv1.weight", "conv2.weight"]),
    ("all", ["conv1.weight", "conv2.weight", "head.1.weight", "head.3.weight"]),
])
def test_string_options_select_weights_in_registration_order(option, expected):
    assert resolve_adareg_layers(ConvNet(), option) == expected


def test_a_bare_linear_module_names_its_weight_without_prefix():
    assert resolve_adareg_layers(nn.Linear(3, 2)) == ["weight"]


def test_a_list_of_names_is_kept_in_its_order():
    names = ["head.3.weight", "conv1.weight"]
    assert resolve_adareg_layers(ConvNet(), names) == names
    assert resolve_adareg_layers(ConvNet(), tuple(names)) == names


@pytest.mark.parametrize("module, option, match", [
    (ConvNet(), "first", r"one of \['all', 'conv', 'last', 'linear'\]"),
    (nn.Sequential(nn.Linear(2, 2)), "conv", "selects no layer.*Conv2d"),
    (nn.Conv2d(1, 2, 3), "last", "selects no layer.*Linear"),
    (ConvNet(), ["head.9.weight"], r"not a parameter of ConvNet.*'conv1.weight'"),
    (ConvNet(), ["head.1.bias"], r"shape \(16,\).*2-D \(linear\) or 4-D"),
    (ConvNet(), ["conv1.weight", "conv1.weight"], "names a parameter twice"),
    (ConvNet(), [], "non-empty list"),
    (ConvNet(), [3], "non-empty list of parameter names"),
])
def test_bad_selections_raise_naming_what_is_wrong(module, option, match):
    with pytest.raises(ValueError, match=match):
        resolve_adareg_layers(module, option)
