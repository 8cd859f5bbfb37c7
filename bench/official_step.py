"""Seconds per official InstaGAN training iteration, measured on this machine with PyTorch.

    python bench/official_step.py                 # the reference configuration, 2 threads
    python bench/official_step.py --steps 20
    python bench/official_step.py --device cuda   # on a GPU (bench/gpu_check.sh)

The official code needs PyTorch 0.4 and no longer runs; this is its `optimize_parameters`
(docs/official.md §5.2–§5.6) written out with the reference networks of
`keras_instagan/torch_reference.py` (same layers, so the same work): per sequential step the six generator
calls (translate, reconstruct, identity, both directions), the generator update through both
discriminators, then both discriminator updates on real vs pooled fake, one Adam step each; every
carried tensor detached. The pool is never full here (it holds 50 fakes, a run makes fewer), so it
returns each new fake, as the official pool does then.

Reference configuration (§9): batch 1, 64×64, ngf = ndf = 32, 9 blocks, ins_max 4, ins_per 2, four
non-empty masks, on the data of `bench/train_step.py`, which runs this beside its own measurement
because this shared machine's speed changes from day to day (§9's 3.14 s was taken on a fast day).
The last line printed is a JSON object.
"""

import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import reference_data

from keras_instagan.torch_reference import NLayerSetDiscriminator, ResnetSetGenerator


def merge_masks(masks):
    """The official soft union: clamp(Σ (m + 1) / 2, 0, 1) · 2 − 1 over the channel axis."""
    return ((masks + 1) / 2).sum(1, keepdim=True).clamp(0, 1) * 2 - 1


def set_requires_grad(nets, flag):
    for net in nets:
        for name, parameter in net.named_parameters():
            if not name.endswith(("weight_u", "weight_v")):
                parameter.requires_grad = flag


def adam(*nets):
    """The official optimizers: Adam(2e-4, β 0.5, 0.999) over the parameters that require gradients
    (so not the spectral-norm vectors u, v)."""
    parameters = [p for net in nets for p in net.parameters() if p.requires_grad]
    return torch.optim.Adam(parameters, lr=2e-4, betas=(0.5, 0.999))


class OfficialIteration:
    """The official networks, optimizers and `optimize_parameters`, on NCHW tensors in [−1, 1]."""

    def __init__(self, ngf, ndf, n_blocks, ins_per, lambda_cyc=10.0, lambda_idt=1.0, lambda_ctx=1.0):
        self.G_A, self.G_B = ResnetSetGenerator(ngf, n_blocks), ResnetSetGenerator(ngf, n_blocks)
        self.D_A, self.D_B = NLayerSetDiscriminator(ndf), NLayerSetDiscriminator(ndf)
        self.ins_per = ins_per
        self.lambda_cyc, self.lambda_idt, self.lambda_ctx = lambda_cyc, lambda_idt, lambda_ctx
        self.opt_G = adam(self.G_A, self.G_B)
        self.opt_D = adam(self.D_A, self.D_B)

    def generator_loss(self, G_other, D, x, masks, fake, rec, fake_mul):
        """One direction's GAN + cycle + identity (of `G_other` on this side's input) + context."""
        lam = self.lambda_cyc
        real = torch.cat([x, masks], 1)
        pred = D(fake_mul)
        gan = F.mse_loss(pred, torch.ones_like(pred))
        cycle = lam * F.l1_loss(rec, real)
        identity = lam * self.lambda_idt * F.l1_loss(G_other(real), real)
        weight = (1 - merge_masks(torch.cat([masks, fake[:, 3:]], 1))) / 2
        context = lam * self.lambda_ctx * (weight * (x - fake[:, :3]).abs()).mean()
        return gan + cycle + identity + context

    def step(self, real_A_img, A_segs, real_B_img, B_segs):
        n, ins_iter = self.ins_per, A_segs.shape[1] // self.ins_per
        real_A, real_B = torch.cat([real_A_img, A_segs], 1), torch.cat([real_B_img, B_segs], 1)
        x, y, masks_B, masks_A = real_A_img, real_B_img, [], []
        for i in range(ins_iter):
            a, b = A_segs[:, n * i : n * (i + 1)], B_segs[:, n * i : n * (i + 1)]
            forward_A, forward_B = bool((a != -1).any()), bool((b != -1).any())
            fake_B = self.G_A(torch.cat([x, a], 1))
            rec_A = self.G_B(fake_B)
            fake_A = self.G_B(torch.cat([y, b], 1))
            rec_B = self.G_A(fake_A)
            padding = -torch.ones_like(a[:, :1]).repeat(1, (ins_iter - i - 1) * n, 1, 1)
            fake_B_mul = torch.cat([fake_B[:, :3], *masks_B, fake_B[:, 3:], padding], 1)
            fake_A_mul = torch.cat([fake_A[:, :3], *masks_A, fake_A[:, 3:], padding], 1)

            set_requires_grad((self.D_A, self.D_B), False)
            self.opt_G.zero_grad()
            loss = 0.0
            if forward_A:
                loss = loss + self.generator_loss(self.G_B, self.D_A, x, a, fake_B, rec_A, fake_B_mul)
            if forward_B:
                loss = loss + self.generator_loss(self.G_A, self.D_B, y, b, fake_A, rec_B, fake_A_mul)
            loss.backward()
            self.opt_G.step()

            set_requires_grad((self.D_A, self.D_B), True)
            self.opt_D.zero_grad()
            for D, real, fake, active in (
                (self.D_A, real_B, fake_B_mul, forward_A),
                (self.D_B, real_A, fake_A_mul, forward_B),
            ):
                if active:
                    pred_real, pred_fake = D(real), D(fake.detach())
                    loss_D = 0.5 * (
                        F.mse_loss(pred_real, torch.ones_like(pred_real))
                        + F.mse_loss(pred_fake, torch.zeros_like(pred_fake))
                    )
                    loss_D.backward()
            self.opt_D.step()

            x, y = fake_B[:, :3].detach(), fake_A[:, :3].detach()
            masks_B.append(fake_B[:, 3:].detach())
            masks_A.append(fake_A[:, 3:].detach())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=10, help="timed iterations (median reported)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations first")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--ins_max", type=int, default=4)
    p.add_argument("--ins_per", type=int, default=2)
    p.add_argument("--size", type=int, default=64, help="image height and width (reference: 64)")
    p.add_argument("--ngf", type=int, default=32, help="generator and discriminator width (reference: 32)")
    p.add_argument("--n_blocks", type=int, default=9, help="residual blocks (reference: 9)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    args = p.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with device:
        model = OfficialIteration(ngf=args.ngf, ndf=args.ngf, n_blocks=args.n_blocks, ins_per=args.ins_per)
    data = [
        torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).to(device)  # NHWC → NCHW
        for domain in reference_data(args.ins_max, args.size)
        for x in domain
    ]

    def step():
        model.step(*data)
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "config": f"official iteration, PyTorch {torch.__version__}, batch 1, "
                f"{args.size}x{args.size}, ngf=ndf={args.ngf}, {args.n_blocks} blocks, "
                f"ins_max {args.ins_max}, ins_per {args.ins_per}, "
                f"{args.threads} threads, {args.device}",
                "seconds_per_step": round(float(np.median(times)), 4),
            }
        )
    )


if __name__ == "__main__":
    main()
