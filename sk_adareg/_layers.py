"""Which weights of a network carry an AdaReg prior, and the layers that own them.

The one place that resolves ``adareg_layers`` (:func:`resolve_adareg_layers`) and finds
the ``nn.Linear`` or ``nn.Conv2d`` behind a weight name (:func:`owning_layers`).
"""

# SPDX-License-Identifier: BSD-3-Clause

from torch import nn

__all__ = ["owning_layers", "resolve_adareg_layers"]

_KINDS = {
    "last": (nn.Linear,),
    "linear": (nn.Linear,),
    "conv": (nn.Conv2d,),
    "all": (nn.Linear, nn.Conv2d),
}


def resolve_adareg_layers(module, adareg_layers="last"):
    """Names of the weight parameters of ``module`` that carry a prior.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    adareg_layers : {"last", "all", "linear", "conv"} or list of str, default="last"
        ``"last"``: the weight of the last ``nn.Linear`` in registration order
        (the order in which submodules were assigned in ``__init__``, which is
        the forward order for ``nn.Sequential`` and most networks).
        ``"linear"`` / ``"conv"`` / ``"all"``: every ``nn.Linear`` weight, every
        ``nn.Conv2d`` weight, or both. A list names parameters as in
        ``module.named_parameters()``; each must be 2-D or 4-D.

    Returns
    -------
    names : list of str
        Parameter names, in registration order for the string options.

    Raises
    ------
    ValueError
        If the option is unknown, names an unknown or unsuitable parameter,
        or selects nothing.

    Examples
    --------
    >>> from torch import nn
    >>> from sk_adareg._layers import resolve_adareg_layers
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    >>> resolve_adareg_layers(net, "last"), resolve_adareg_layers(net, "all")
    (['2.weight'], ['0.weight', '2.weight'])
    """
    if isinstance(adareg_layers, str):
        if adareg_layers not in _KINDS:
            raise ValueError(
                f"adareg_layers must be one of {sorted(_KINDS)} or a list of parameter "
                f"names, got {adareg_layers!r}."
            )
        names = [
            f"{name}.weight" if name else "weight"
            for name, sub in module.named_modules()
            if isinstance(sub, _KINDS[adareg_layers])
        ]
        if adareg_layers == "last":
            names = names[-1:]
        if not names:
            kinds = " or ".join(k.__name__ for k in _KINDS[adareg_layers])
            raise ValueError(
                f"adareg_layers={adareg_layers!r} selects no layer: the module "
                f"{type(module).__name__} has no {kinds} layer. Pass a list of "
                "parameter names instead."
            )
        return names

    names = list(adareg_layers)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(
            f"adareg_layers must be a non-empty list of parameter names, got {adareg_layers!r}."
        )
    params = dict(module.named_parameters())
    candidates = [n for n, p in params.items() if p.ndim in (2, 4)]
    for name in names:
        if name not in params:
            raise ValueError(
                f"adareg_layers names {name!r}, which is not a parameter of "
                f"{type(module).__name__}; its 2-D and 4-D weights are {candidates}."
            )
        if params[name].ndim not in (2, 4):
            raise ValueError(
                f"adareg_layers names {name!r} of shape {tuple(params[name].shape)}; "
                "the prior needs a 2-D (linear) or 4-D (convolution) weight."
            )
    if len(set(names)) != len(names):
        raise ValueError(f"adareg_layers names a parameter twice: {names}.")
    return names


def owning_layers(module, names):
    """Map each weight name to the ``nn.Linear`` or ``nn.Conv2d`` that owns it.

    The Laplace posterior (:mod:`sk_adareg.laplace`) needs these layers.

    Parameters
    ----------
    module : torch.nn.Module
        The network.
    names : iterable of str
        Parameter names, as in ``module.named_parameters()``.

    Returns
    -------
    layers : dict of str to torch.nn.Module

    Raises
    ------
    ValueError
        If a name is unknown, repeated, or not the ``weight`` of a linear or
        (ungrouped) 2-D convolutional layer.
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ValueError("names must name at least one weight, got an empty list.")
    params = dict(module.named_parameters())
    layers = {}
    for name in names:
        if not isinstance(name, str) or name not in params:
            raise ValueError(
                f"{name!r} is not a parameter of the module; expected names as in "
                f"module.named_parameters(), e.g. {list(params)[:4]}."
            )
        if name in layers:
            raise ValueError(f"The weight {name!r} is named twice.")
        owner_name, _, attr = name.rpartition(".")
        owner = module.get_submodule(owner_name)
        if attr != "weight" or not isinstance(owner, (nn.Linear, nn.Conv2d)):
            raise ValueError(
                f"The Laplace approximation needs the weight of an nn.Linear or nn.Conv2d, "
                f"but {name!r} is the {attr!r} of a {type(owner).__name__}."
            )
        if isinstance(owner, nn.Conv2d) and owner.groups != 1:
            # A grouped weight (out, in / groups, kh, kw) is block-diagonal in the
            # out x (in kh kw) matrix the prior sits on: not a Kronecker factor pair.
            raise ValueError(
                f"The convolution {name!r} has groups={owner.groups}; only groups=1 is "
                "supported."
            )
        layers[name] = owner
    return layers
