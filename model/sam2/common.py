"""Small building blocks shared by several SAM 2 components."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.kernels.cpu_gemm import Linear, linear_act


class MLP(nn.Module):
    """`num_layers` linear layers with an activation between them.

    Parameters live in `layers.{i}` so official checkpoint keys load unchanged.
    """

    def __init__(
        self,
        *,
        input_dim: int,
        hidden_dim: int,
        output_dim: int,
        num_layers: int,
        activation: type[nn.Module] = nn.ReLU,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        dims_in = [input_dim] + [hidden_dim] * (num_layers - 1)
        dims_out = [hidden_dim] * (num_layers - 1) + [output_dim]
        self.layers = nn.ModuleList(Linear(i, o) for i, o in zip(dims_in, dims_out, strict=True))
        self.act = activation()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        post_op = _post_op(self.act)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            if i < last and post_op is not None:
                # The activation applied as oneDNN writes the product (`model.kernels.cpu_gemm`):
                # one pass less over the widest activations (Hiera's 4x MLPs).
                x = linear_act(x, layer.weight, layer.bias, post_op)
                continue
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


def _post_op(act: nn.Module) -> str | None:
    """`linear_act`'s name for `act`, None for an activation it does not fuse."""
    if type(act) is nn.ReLU:
        return "relu"
    if type(act) is nn.GELU and act.approximate == "none":
        return "gelu"
    return None


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of a (B, C, H, W) tensor."""

    def __init__(self, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last):
            # Channels-last data is a contiguous (B, H, W, C) tensor: one fused layer_norm
            # over its last axis instead of seven passes over the grid (the memory
            # encoder's norms take 2.5-3 ms each at 1024 in NCHW).
            nhwc = x.permute(0, 2, 3, 1)
            out = F.layer_norm(nhwc, (x.shape[1],), self.weight, self.bias, self.eps)
            return out.permute(0, 3, 1, 2)
        centred = x - x.mean(1, keepdim=True)
        inv_std = torch.rsqrt(centred.square().mean(1, keepdim=True) + self.eps)
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad):
            return self.weight[:, None, None] * (centred * inv_std) + self.bias[:, None, None]
        # Without autograd, in place on the fresh `centred`: three passes fewer over the
        # grid (the memory encoder's first norm, 4 channels of 512 x 512 at 1024).
        return centred.mul_(inv_std).mul_(self.weight[:, None, None]).add_(self.bias[:, None, None])
