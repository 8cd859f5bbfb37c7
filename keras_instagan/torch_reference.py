"""The official InstaGAN networks written again in current PyTorch from their description
(docs/official.md §2–§4): the reference of the parity and conversion tests and of
`bench/official_step.py`. Needs `torch`, which keras-instagan does not require.

Same module structure, so the same state_dict keys and shapes as the official checkpoints. The
forward passes follow the official batch-1 semantics: emptiness pooled over the batch, empty masks
skipped and copied through, the spectral-norm wrapper doing one power iteration per call.
"""

import torch
from torch import nn


class ResnetBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.conv_block(x)


def encoder(in_channels, ngf, n_blocks):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for mult in (1, 2):
        layers += [
            nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
            nn.InstanceNorm2d(ngf * mult * 2),
            nn.ReLU(True),
        ]
    return nn.Sequential(*layers, *[ResnetBlock(4 * ngf) for _ in range(n_blocks)])


def decoder(out_channels, width):
    return nn.Sequential(
        nn.ConvTranspose2d(4 * width, 2 * width, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm2d(2 * width),
        nn.ReLU(True),
        nn.ConvTranspose2d(2 * width, width, 3, stride=2, padding=1, output_padding=1),
        nn.InstanceNorm2d(width),
        nn.ReLU(True),
        nn.ReflectionPad2d(3),
        nn.Conv2d(width, out_channels, 7),
        nn.Tanh(),
    )


def nonempty(segs):
    mean = (segs + 1).mean(0).mean(-1).mean(-1)
    if mean.sum() == 0:
        mean[0] = 1
    return mean > 0


class ResnetSetGenerator(nn.Module):
    def __init__(self, ngf=64, n_blocks=9):
        super().__init__()
        self.encoder_img = encoder(3, ngf, n_blocks)
        self.encoder_seg = encoder(1, ngf, n_blocks)
        self.decoder_img = decoder(3, 2 * ngf)
        self.decoder_seg = decoder(1, 3 * ngf)

    def forward(self, x):
        img, segs = x[:, :3], x[:, 3:]
        keep = nonempty(segs)
        enc_img = self.encoder_img(img)
        enc_segs = [self.encoder_seg(segs[:, i : i + 1]) for i in range(segs.shape[1]) if keep[i]]
        total = torch.cat(enc_segs).sum(0, keepdim=True)
        out, k = [self.decoder_img(torch.cat([enc_img, total], 1))], 0
        for i in range(segs.shape[1]):
            if keep[i]:
                out.append(self.decoder_seg(torch.cat([enc_segs[k], enc_img, total], 1)))
                k += 1
            else:
                out.append(segs[:, i : i + 1])
        return torch.cat(out, 1)


class SpectralNorm(nn.Module):
    """Keeps W̄ trainable, u and v as non-trainable parameters; one power iteration per call."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        weight = module.weight.data
        height, width = weight.shape[0], weight[0].numel()
        u, v = torch.randn(height), torch.randn(width)
        del module._parameters["weight"]
        module.register_parameter("weight_u", nn.Parameter(u / u.norm(), requires_grad=False))
        module.register_parameter("weight_v", nn.Parameter(v / v.norm(), requires_grad=False))
        module.register_parameter("weight_bar", nn.Parameter(weight))

    def forward(self, x):
        u, v, w = self.module.weight_u, self.module.weight_v, self.module.weight_bar
        matrix = w.view(w.shape[0], -1)
        v.data = matrix.data.t().mv(u.data)
        v.data = v.data / (v.data.norm() + 1e-12)
        u.data = matrix.data.mv(v.data)
        u.data = u.data / (u.data.norm() + 1e-12)
        sigma = u.dot(matrix.mv(v))
        self.module.weight = w / sigma
        return self.module(x)


def features(in_channels, ndf):
    return nn.Sequential(
        SpectralNorm(nn.Conv2d(in_channels, ndf, 4, 2, 1)),
        nn.LeakyReLU(0.2, True),
        SpectralNorm(nn.Conv2d(ndf, 2 * ndf, 4, 2, 1)),
        nn.InstanceNorm2d(2 * ndf),
        nn.LeakyReLU(0.2, True),
        SpectralNorm(nn.Conv2d(2 * ndf, 4 * ndf, 4, 2, 1)),
        nn.InstanceNorm2d(4 * ndf),
        nn.LeakyReLU(0.2, True),
    )


class NLayerSetDiscriminator(nn.Module):
    def __init__(self, ndf=64):
        super().__init__()
        self.feature_img = features(3, ndf)
        self.feature_seg = features(1, ndf)
        self.classifier = nn.Sequential(
            SpectralNorm(nn.Conv2d(8 * ndf, 16 * ndf, 4, 1, 1)),
            nn.InstanceNorm2d(16 * ndf),
            nn.LeakyReLU(0.2, True),
            SpectralNorm(nn.Conv2d(16 * ndf, 1, 4, 1, 1)),
        )

    def forward(self, x):
        img, segs = x[:, :3], x[:, 3:]
        keep = nonempty(segs)
        feats = [self.feature_seg(segs[:, i : i + 1]) for i in range(segs.shape[1]) if keep[i]]
        return self.classifier(torch.cat([self.feature_img(img), torch.stack(feats).sum(0)], 1))
