"""Kronecker-factored Gauss-Newton curvature (KFAC) of chosen weights of a network.

Pure PyTorch. For a weight ``W`` (p x d) of an ``nn.Linear`` or ``nn.Conv2d``
whose output is ``s = W a (+ bias)`` at each of ``T`` positions (``T = 1``
for a linear layer on a batch of vectors, the output pixels of a
convolution), the Gauss-Newton curvature of the data term over ``n`` data
points, in the column-stacked ``vec(W)``, is approximated as in KFC (Grosse
and Martens, 2016; the "expand" setting of Eschenhagen et al., 2023) by

    sum_{n,t} (a a^T) kron (b^T Lambda b)  ~=  A kron G,
    A = sum_{n,t} a a^T,            G = (1 / (n T)) sum_{n,t} b^T Lambda b,

with ``b = d f / d s`` (outputs x p) and ``Lambda`` the Hessian of the negative
log-likelihood in the network output ``f``. ``A`` is a sum and ``G`` a mean,
so ``A kron G`` approximates the summed Gauss-Newton matrix. Both are exact
for a single data point with ``T = 1``, and for a last linear layer under a
Gaussian likelihood at any ``n``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._data import first_output
from ._layers import owning_layers

__all__ = ["KFACCurvature", "LayerFactors", "eval_mode", "kfac", "map_curvature",
           "output_gradients"]

LIKELIHOODS = ("gaussian", "categorical")


@dataclass
class LayerFactors:
    """The Kronecker factors of one weight, and that weight.

    Attributes
    ----------
    A : torch.Tensor of shape (d, d), float64
        ``sum_{n,t} a a^T``: the summed second moment of the layer's inputs
        (patches for a convolution, in the column order of
        ``weight.reshape(p, -1)``).
    G : torch.Tensor of shape (m, p, p), float64
        Per-output-group factors, each a mean over data points and positions.
        Gaussian likelihood: ``m`` is the number of targets and ``G[k]`` is
        the factor of target ``k`` at unit noise, so that the factor at noise
        variances ``sigma2`` is ``sum_k G[k] / sigma2[k]``. Categorical
        likelihood: ``m = 1``, the factor of the softmax cross-entropy.
    weight : torch.Tensor of shape (p, d), float64
        A detached copy of the weight, seen as a matrix, at which the factors
        were computed (the mode of the Laplace approximation).
    n_positions : int
        ``n T``, the count the factors ``G`` were averaged over.
    """

    A: torch.Tensor
    G: torch.Tensor
    weight: torch.Tensor
    n_positions: int


@dataclass
class KFACCurvature:
    """KFAC factors of chosen weights and the fit of the data at the mode.

    Attributes
    ----------
    layers : dict of str to LayerFactors
        Per parameter name, in the order asked for.
    likelihood : {"gaussian", "categorical"}
        The likelihood the factors were computed for.
    n_samples : int or float
        Number of data points ``n`` (the sum of the sample weights, when given).
    n_outputs : int
        Width ``k`` of the network output (targets or classes).
    sse : torch.Tensor of shape (k,), float64, or None
        Gaussian likelihood: the sum of squared residuals per target.
    nll : torch.Tensor, float64 scalar, or None
        Categorical likelihood: the summed cross-entropy (natural log).
    """

    layers: dict
    likelihood: str
    n_samples: int
    n_outputs: int
    sse: torch.Tensor | None = None
    nll: torch.Tensor | None = None


def _patches(layer, x):
    """The inputs of ``layer`` as (n, T, d) rows matching ``weight.reshape(p, d)``."""
    if isinstance(layer, nn.Conv2d):
        if x.ndim != 4:
            raise ValueError(
                f"The convolution expects a batched (n, c, h, w) input, got shape "
                f"{tuple(x.shape)}."
            )
        # The padding the layer applies (any mode, "same" included), then patches
        # ordered (in, kh, kw) like the flattened weight.
        mode = "constant" if layer.padding_mode == "zeros" else layer.padding_mode
        x = F.pad(x, _padding(layer), mode=mode)
        cols = F.unfold(x, layer.kernel_size, dilation=layer.dilation, stride=layer.stride)
        return cols.transpose(1, 2)
    if x.ndim < 2:
        raise ValueError(
            f"The linear layer expects a batched input (n, ..., d), got shape {tuple(x.shape)}."
        )
    return x.reshape(x.shape[0], -1, x.shape[-1])


def _padding(layer):
    """The (left, right, top, bottom) padding a convolution applies to its input.

    torch keeps it in a private attribute (:mod:`sk_adareg._private_api`); without it,
    it is computed from ``padding`` as torch computes it.
    """
    padding = getattr(layer, "_reversed_padding_repeated_twice", None)
    if padding is not None:
        return padding
    if layer.padding == "valid":
        return [0, 0, 0, 0]
    if layer.padding == "same":
        padding = []
        for d, k in zip(reversed(layer.dilation), reversed(layer.kernel_size), strict=True):
            total = d * (k - 1)
            padding += [total // 2, total - total // 2]
        return padding
    return [p for p in reversed(layer.padding) for _ in range(2)]


def _output_rows(layer, s):
    """A layer output (or its gradient) as (n, T, p)."""
    if isinstance(layer, nn.Conv2d):
        return s.flatten(2).transpose(1, 2)
    return s.reshape(s.shape[0], -1, s.shape[-1])


@contextlib.contextmanager
def eval_mode(module):
    """Evaluation mode inside the block; each submodule's mode is put back after it."""
    # Dropout off and batch norm on running statistics, so that data points
    # do not interact; the modes are put back afterwards.
    modes = [m.training for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in zip(module.modules(), modes, strict=True):
            m.training = mode


def _positions(parts):
    """The (n, T, .) rows of a layer's calls side by side (one call: no copy)."""
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def _forward(module, X, layers):
    """Run ``module(X)`` recording each layer's input patches and outputs.

    Returns ``f`` as (n, k), the patches (n, T, d) per layer in float64, and
    the list of output tensors per layer (one per call: a layer called twice
    contributes two sets of positions), each with whether it is the module's
    output itself.
    """
    calls = {name: [] for name in layers}
    handles = []
    for name, layer in layers.items():
        def hook(_, inputs, output, record=calls[name]):
            record.append((inputs[0], output))
        handles.append(layer.register_forward_hook(hook))
    try:
        out = first_output(module(X))
    finally:
        for handle in handles:
            handle.remove()
    if not isinstance(out, torch.Tensor) or out.ndim not in (1, 2):
        raise ValueError(
            "The module must return one tensor of shape (n,) or (n, k), got "
            f"{type(out).__name__}{'' if not isinstance(out, torch.Tensor) else tuple(out.shape)}."
        )
    f = out.reshape(out.shape[0], -1)
    patches, outputs = {}, {}
    for name, layer in layers.items():
        if not calls[name]:
            raise ValueError(f"The layer of {name!r} was not used in the forward pass.")
        # Copies (not views of the inputs, which a later in-place operation may change).
        patches[name] = _positions(
            [_patches(layer, x.detach()).to(torch.float64, copy=True) for x, _ in calls[name]])
        outputs[name] = [(s, s is out) for _, s in calls[name]]
        if patches[name].shape[0] != f.shape[0]:
            raise ValueError(
                f"The input of {name!r} has batch size {patches[name].shape[0]} but the "
                f"output has {f.shape[0]}: the first dimension must index data points."
            )
    return f, patches, outputs


def _backward(f, v, layers, outputs):
    """``d <f, v> / d s`` per layer as (n, T, p), float64.

    Data points do not interact, so the gradient of the sum over the batch
    gives each point's own ``b^T v`` at once. At the module's own output (the
    last layer of an MLP) it is ``v``, which autograd would return: with only
    that layer asked for, no backward pass runs.
    """
    v = v.to(f.dtype)
    flat = [s for name in layers for s, final in outputs[name] if not final]
    grads = iter(torch.autograd.grad(f, flat, grad_outputs=v, retain_graph=True,
                                     allow_unused=True) if flat else ())
    result = {}
    for name, layer in layers.items():
        parts = []
        for s, final in outputs[name]:
            grad = v.reshape(s.shape) if final else next(grads)
            grad = grad if grad is not None else torch.zeros_like(s)
            parts.append(_output_rows(layer, grad).to(torch.float64))
        result[name] = _positions(parts)
    return result


def _output_hessian_roots(f, likelihood):
    """Columns ``v_c`` (n, k) with ``sum_c v_c v_c^T`` the output Hessian, and their group.

    Gaussian at unit noise: the unit vectors, one group per target.
    Categorical: ``sqrt(pi_c) (e_c - pi)``, whose outer products sum to
    ``diag(pi) - pi pi^T``, all in group 0.
    """
    k = f.shape[1]
    if likelihood == "gaussian":
        for c in range(k):
            v = torch.zeros_like(f)
            v[:, c] = 1.0
            yield c, v
    else:
        pi = torch.softmax(f.detach().to(torch.float64), dim=1)
        eye = torch.eye(k, dtype=torch.float64, device=f.device)
        for c in range(k):
            yield 0, pi[:, c:c + 1].sqrt() * (eye[c] - pi)


def _batches(data):
    for batch in data:
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError("data must yield (X, y) pairs or (X, y, sample_weight) triples.")
        yield (*batch, None) if len(batch) == 2 else batch


def kfac(module, data, names, likelihood="gaussian"):
    """KFAC factors of chosen weights, and the data fit, at the current weights.

    One forward pass per batch, then one backward pass per output dimension
    (targets or classes), with the gradients taken at the layers' outputs
    (parameter ``.grad`` fields are not touched); none under the Gaussian
    likelihood when every weight is that of the module's output layer, whose
    output gradients are the unit vectors.

    Parameters
    ----------
    module : torch.nn.Module
        The network, returning ``f`` of shape (n, k) or (n,): regression
        outputs, or class logits. It runs in eval mode (its modes are restored
        afterwards), and data points must not interact in it.
    data : iterable of (X, y) or (X, y, sample_weight)
        Batches of the training data: ``module(X)`` is called on each ``X``.
        Gaussian: ``y`` of the shape of ``f``; categorical: class indices (n,).
        A sample weight ``w`` (n,) counts the sample ``w`` times, as
        frequency weights do: in the factors, the data fit and
        ``n_samples`` (then a float).
    names : list of str
        Weight names as in ``module.named_parameters()``, each the ``weight``
        of an ``nn.Linear`` or ``nn.Conv2d`` (``groups=1``). Biases and other
        parameters stay out of the approximation (held at their values).
    likelihood : {"gaussian", "categorical"}, default="gaussian"
        ``"gaussian"``: squared error, one factor per target at unit noise.
        ``"categorical"``: softmax cross-entropy, its exact Gauss-Newton
        output Hessian ``diag(pi) - pi pi^T``.

    Returns
    -------
    curvature : KFACCurvature
        The factors per weight and the data fit (``sse`` or ``nll``).

    Raises
    ------
    ValueError
        For an unknown likelihood, a weight that is neither linear nor
        convolutional, targets of the wrong shape, or empty data.

    Examples
    --------
    >>> import torch
    >>> from sk_adareg._kfac import kfac
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    >>> X, y = torch.randn(10, 3), torch.randn(10, 2)
    >>> curv = kfac(net, [(X, y)], ["0.weight", "2.weight"])
    >>> curv.layers["0.weight"].A.shape, curv.layers["0.weight"].G.shape
    (torch.Size([3, 3]), torch.Size([2, 4, 4]))
    """
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}.")
    layers = owning_layers(module, names)
    A, G, counts = {}, {}, dict.fromkeys(layers, 0)
    n_samples, n_outputs, fit = 0, None, None
    with eval_mode(module), torch.enable_grad():
        for X, y, w in _batches(data):
            f, patches, outputs = _forward(module, X, layers)
            n, k = f.shape
            root = None
            if w is not None:
                w = torch.as_tensor(w, device=f.device, dtype=torch.float64).reshape(n)
                # Each factor is a sum of outer products: a sample's count scales both.
                root = w.sqrt()[:, None, None]
                patches = {name: a * root.to(a.dtype) for name, a in patches.items()}
            if n_outputs is None:
                n_outputs = k
                groups = k if likelihood == "gaussian" else 1
                fit = torch.zeros(k if likelihood == "gaussian" else (),
                                  dtype=torch.float64, device=f.device)
            elif k != n_outputs:
                raise ValueError(
                    f"The output width changed between batches: {n_outputs} then {k}.")
            fit += _data_fit(f.detach(), y, likelihood, w)
            for name, a in patches.items():
                A[name] = A.get(name, 0) + torch.einsum("ntd,nte->de", a, a)
                counts[name] += a.shape[1] * (a.shape[0] if w is None else float(w.sum()))
            # At the module's own output a Gaussian target's b is its unit vector:
            # G[c] gains the batch's count at (c, c), and no outer product is formed.
            rest = layers
            if likelihood == "gaussian":
                rest = {name: layer for name, layer in layers.items()
                        if not all(final for _, final in outputs[name])}
                diagonal = torch.arange(k, device=f.device)
                for name in (name for name in layers if name not in rest):
                    if name not in G:
                        G[name] = torch.zeros((k, k, k), dtype=torch.float64, device=f.device)
                    G[name][diagonal, diagonal, diagonal] += n if w is None else w.sum()
            for group, v in _output_hessian_roots(f, likelihood) if rest else ():
                for name, b in _backward(f, v, rest, outputs).items():
                    if root is not None:
                        b = b * root.to(b.dtype)
                    if name not in G:
                        G[name] = b.new_zeros((groups, b.shape[-1], b.shape[-1]))
                    G[name][group] += torch.einsum("ntp,ntq->pq", b, b)
            n_samples += n if w is None else float(w.sum())
    if n_samples == 0:
        raise ValueError("data yielded no data points.")
    result = {}
    for name, layer in layers.items():
        weight = layer.weight.detach().to(torch.float64)
        result[name] = LayerFactors(
            A=(A[name] + A[name].T) / 2,
            G=(G[name] + G[name].transpose(1, 2)) / (2 * counts[name]),
            weight=weight.reshape(weight.shape[0], -1).clone(),
            n_positions=counts[name],
        )
    return KFACCurvature(
        layers=result, likelihood=likelihood, n_samples=n_samples, n_outputs=n_outputs,
        sse=fit if likelihood == "gaussian" else None,
        nll=fit if likelihood == "categorical" else None,
    )


def _data_fit(f, y, likelihood, weights=None):
    """Per-target sum of squared residuals (Gaussian) or summed cross-entropy, weighted."""
    y = torch.as_tensor(y, device=f.device)
    w = 1.0 if weights is None else weights
    if likelihood == "gaussian":
        y = y.reshape(y.shape[0], -1) if y.ndim == 1 else y
        if tuple(y.shape) != tuple(f.shape):
            raise ValueError(
                f"y has shape {tuple(y.shape)} but the network output has shape "
                f"{tuple(f.shape)}."
            )
        w = w if weights is None else w[:, None]
        return (w * (f.to(torch.float64) - y.to(torch.float64)) ** 2).sum(0)
    if y.ndim != 1 or y.shape[0] != f.shape[0] or y.is_floating_point():
        raise ValueError(
            f"y must hold {f.shape[0]} integer class indices, got shape {tuple(y.shape)} "
            f"and dtype {y.dtype}."
        )
    return (w * F.cross_entropy(f.to(torch.float64), y.long(), reduction="none")).sum()


def output_gradients(module, X, names):
    """Per-data-point gradients of each output with respect to each weight, factored.

    For output ``k`` and data point ``x``, ``d f_k(x) / d W = sum_t b_t a_t^T``
    with ``a_t`` the layer's input (patch) and ``b_t`` the gradient of ``f_k``
    at the layer's output, at position ``t``.

    Parameters
    ----------
    module : torch.nn.Module
        The network (run in eval mode, restored afterwards).
    X : torch.Tensor
        A batch of inputs.
    names : list of str
        Weight names, as for :func:`kfac`.

    Returns
    -------
    f : torch.Tensor of shape (n, k)
        The detached network output.
    factors : list of dict of str to (a, b)
        One dict per output ``k``; ``a`` of shape (n, T, d) and ``b`` of
        shape (n, T, p), float64.
    """
    layers = owning_layers(module, names)
    with eval_mode(module), torch.enable_grad():
        f, patches, outputs = _forward(module, X, layers)
        factors = []
        for k in range(f.shape[1]):
            v = torch.zeros_like(f)
            v[:, k] = 1.0
            grads = _backward(f, v, layers, outputs)
            factors.append({name: (patches[name], grads[name]) for name in layers})
    return f.detach(), factors


def map_curvature(curvature, convert):
    """A copy of ``curvature`` with ``convert`` applied to each of its arrays.

    The estimators keep the curvature as numpy arrays (``convert=to_numpy``),
    so that a model fitted on a GPU unpickles anywhere, and rebuild tensors
    on the net's device to predict.

    Parameters
    ----------
    curvature : KFACCurvature
    convert : callable
        Applied to every tensor or array of it (None stays None).

    Returns
    -------
    curvature : KFACCurvature
    """
    def apply(t):
        return None if t is None else convert(t)

    layers = {name: dataclasses.replace(f, A=apply(f.A), G=apply(f.G), weight=apply(f.weight))
              for name, f in curvature.layers.items()}
    return dataclasses.replace(curvature, layers=layers, sse=apply(curvature.sse),
                               nll=apply(curvature.nll))
