"""Label-smoothed cross-entropy with a hand-written backward.

`F.cross_entropy(..., label_smoothing=eps)` builds its gradient from several (N, V) tensors
(the nll scatter, the smoothing sum's expand, their sum, the log-softmax backward); each is a
fresh 20-40 MB allocation per step on Multi30k. The gradient has a closed form,
softmax(logits) - ((1 - eps) * onehot(target) + eps / V), so the backward here reuses the one
(N, V) buffer the forward kept: about a tenth of a training step on CPU.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


class _SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor, pad_id: int, eps: float) -> torch.Tensor:
        ctx.logits_dtype = logits.dtype  # the gradient goes back in this dtype
        if logits.dtype in (torch.float16, torch.bfloat16):
            logits = logits.float()
        logp = torch.log_softmax(logits, dim=-1)  # (N, V)
        keep = target != pad_id  # (N,)
        safe_target = target.masked_fill(~keep, 0).unsqueeze(1)
        nll = -logp.gather(1, safe_target).squeeze(1)  # (N,)
        per_token = (1.0 - eps) * nll
        if eps > 0:
            per_token = per_token - (eps / logits.size(-1)) * logp.sum(dim=1)
        ctx.save_for_backward(logp, safe_target, keep)
        ctx.eps, ctx.used = eps, False
        return per_token.masked_fill(~keep, 0.0).sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_loss: torch.Tensor):
        if ctx.used:
            raise RuntimeError("smoothed_cross_entropy: backward runs once (it reuses its buffer); "
                               "do not use retain_graph with it")
        ctx.used = True
        logp, safe_target, keep = ctx.saved_tensors
        grad = logp.exp_()  # softmax, in place: the forward's buffer is not needed any more
        if ctx.eps > 0:
            grad.sub_(ctx.eps / grad.size(1))
        grad.scatter_add_(1, safe_target, torch.full_like(safe_target, -(1.0 - ctx.eps), dtype=grad.dtype))
        grad.mul_((keep.to(grad.dtype) * grad_loss).unsqueeze(1))
        return grad.to(ctx.logits_dtype), None, None, None


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, pad_id: int,
                           label_smoothing: float = 0.0) -> torch.Tensor:
    """Summed label-smoothed cross-entropy over targets that are not `pad_id`.

    logits (N, V), target (N,) long -> scalar. Equal in value and gradient to
    `F.cross_entropy(logits, target, ignore_index=pad_id, label_smoothing=eps, reduction="sum")`.
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits (N, V) and target (N,) expected, got {tuple(logits.shape)} and {tuple(target.shape)}")
    return _SmoothedCrossEntropy.apply(logits, target, pad_id, label_smoothing)
