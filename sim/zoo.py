"""Layer shapes of the shipped workloads, and the writer of ``configs/workloads/*.csv``.

Shapes come from the architectures' definitions (no weights): ResNet-18/50 (He et al.
2016, torchvision layout with the stride on the 3x3 conv), MobileNet-V2 (Sandler et al.
2018, width 1.0) at 224x224, batch 1; DeiT-tiny, -small and -base (arXiv 2012.12877: 12
blocks, embed 192 / 384 / 768, 3 / 6 / 12 heads, MLP 4 x embed, 197 tokens). Convs are
written in SCALE-Sim's conv format with the IFMAP given as the padded size actually read,
``(out - 1) * stride + filter``, so that SCALE-Sim's ``ceil((H - F + S) / S)`` gives the
true output size; depthwise convs end with the keyword ``depthwise``. DeiT is written in
the GEMM format, one row per attention head for the two attention matmuls (ending with the
keyword ``matmul``); the CSVs hold the GEMMs only (SCALE-Sim's format has no vector ops),
while ``--model deit_*`` loads :func:`deit_workload`, the whole network with its vector ops
(same GEMMs, tested). Regenerate with ``python -m sim.zoo``; a test checks the files are
current.
"""

from __future__ import annotations

import sys
from pathlib import Path

from quant.errors import ConfigError, check_choice
from sim.workload import DEPTHWISE, WORKLOAD_DIR, GemmOp, VectorOp, Workload

HEADER_CONV = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
               "Num Filter, Strides,")
HEADER_GEMM = "Layer Name, M, N, K,"


class _Conv:
    def __init__(self, size: int = 224) -> None:
        self.rows: list[str] = []
        self.size = size

    def conv(self, name: str, cin: int, cout: int, k: int, stride: int, size: int,
             depthwise: bool = False) -> int:
        pad = k // 2
        out = (size + 2 * pad - k) // stride + 1
        ifm = (out - 1) * stride + k
        filters = 1 if depthwise else cout
        mark = f" {DEPTHWISE}," if depthwise else ""
        self.rows.append(f"{name}, {ifm}, {ifm}, {k}, {k}, {cin}, {filters}, {stride},{mark}")
        return out


def resnet(depth: int) -> list[str]:
    z = _Conv()
    s = z.conv("conv1", 3, 64, 7, 2, 224)
    s = (s + 2 - 3) // 2 + 1  # maxpool 3x3 s2 p1 → 56
    blocks = {18: [2, 2, 2, 2], 50: [3, 4, 6, 3]}[depth]
    cin = 64
    for stage, (n, width) in enumerate(zip(blocks, [64, 128, 256, 512], strict=True)):
        for b in range(n):
            stride = 2 if (b == 0 and stage > 0) else 1
            p = f"layer{stage + 1}.{b}"
            if depth == 18:
                cout = width
                s2 = z.conv(f"{p}.conv1", cin, width, 3, stride, s)
                z.conv(f"{p}.conv2", width, width, 3, 1, s2)
            else:
                cout = 4 * width
                z.conv(f"{p}.conv1", cin, width, 1, 1, s)
                s2 = z.conv(f"{p}.conv2", width, width, 3, stride, s)
                z.conv(f"{p}.conv3", width, cout, 1, 1, s2)
            if stride != 1 or cin != cout:
                z.conv(f"{p}.downsample", cin, cout, 1, stride, s)
            cin, s = cout, s2
    z.conv("fc", cin, 1000, 1, 1, 1)
    return [HEADER_CONV, *z.rows]


def mobilenet_v2() -> list[str]:
    z = _Conv()
    s = z.conv("features.0", 3, 32, 3, 2, 224)
    cin = 32
    idx = 1
    for t, c, n, stride0 in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                             (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for i in range(n):
            stride = stride0 if i == 0 else 1
            hid = cin * t
            p = f"features.{idx}"
            if t != 1:
                z.conv(f"{p}.expand", cin, hid, 1, 1, s)
            s2 = z.conv(f"{p}.DP", hid, hid, 3, stride, s, depthwise=True)
            z.conv(f"{p}.project", hid, c, 1, 1, s2)
            cin, s = c, s2
            idx += 1
    z.conv("features.18", cin, 1280, 1, 1, s)
    z.conv("classifier", 1280, 1000, 1, 1, 1)
    return [HEADER_CONV, *z.rows]


def deit(embed: int = 768, heads: int = 12, depth: int = 12, mlp: int = 3072,
         tokens: int = 197) -> list[str]:
    """DeiT GEMMs in SCALE-Sim's GEMM format: ``name, M (tokens), N (outputs), K``."""
    dh = embed // heads
    rows = [f"patch_embed, {tokens - 1}, {embed}, {3 * 16 * 16},"]
    for b in range(depth):
        rows.append(f"blocks.{b}.qkv, {tokens}, {3 * embed}, {embed},")
        for h in range(heads):
            rows.append(f"blocks.{b}.attn_qk.h{h}, {tokens}, {tokens}, {dh}, matmul")
        for h in range(heads):
            rows.append(f"blocks.{b}.attn_av.h{h}, {tokens}, {dh}, {tokens}, matmul")
        rows.append(f"blocks.{b}.proj, {tokens}, {embed}, {embed},")
        rows.append(f"blocks.{b}.fc1, {tokens}, {mlp}, {embed},")
        rows.append(f"blocks.{b}.fc2, {tokens}, {embed}, {mlp},")
    rows.append(f"head, 1, 1000, {embed},")
    return [HEADER_GEMM, *rows]


#: DeiT sizes (arXiv 2012.12877): name -> (embed dim, heads); 12 blocks, MLP 4 x embed,
#: 224 x 224 images in 16 x 16 patches (196 + 1 tokens), 1000 classes.
DEIT: dict[str, tuple[int, int]] = {"deit_tiny": (192, 3), "deit_small": (384, 6),
                                    "deit_base": (768, 12)}


def vit_workload(embed: int, heads: int, depth: int = 12, mlp_ratio: int = 4,
                 tokens: int = 197, patch_k: int = 3 * 16 * 16, classes: int = 1000,
                 name: str = "vit") -> Workload:
    """A whole ViT (timm's DeiT graph, docs/vit.md) as engine GEMMs and vector-unit ops, for
    one image: the patch embedding, the position embedding, per block LayerNorm, qkv,
    QK^T (one group per head), the softmax pipelined between the attention matmuls
    (rule R16 of :mod:`sim.timing`), A.V, its requantizer (R11d), proj, the residual add,
    LayerNorm, fc1, GELU, fc2 and the add; then the final LayerNorm (every token, as the
    artifact) and the head on the class token."""
    d, t, dh, hid = embed, tokens, embed // heads, mlp_ratio * embed
    if embed % heads:
        raise ConfigError(f"embed must be a multiple of heads {heads}, not {embed}")
    ops: list[GemmOp | VectorOp] = [
        GemmOp("patch_embed", "conv", m=d, n=t - 1, k=patch_k),
        VectorOp("pos_embed", "pos_embed", d * t),
    ]

    def norm(n: str) -> VectorOp:
        return VectorOp(n, "layernorm", d * t, rows=t, length=d)

    for b in range(depth):
        p = f"blocks.{b}."
        ops += [norm(p + "norm1"),
                GemmOp(p + "qkv", "token_linear", m=3 * d, n=t, k=d),
                GemmOp(p + "attn_qk", "matmul", m=t, n=t, k=dh, groups=heads,
                       splits=((t, 0, heads),)),
                VectorOp(p + "softmax", "softmax", heads * t * t, rows=heads * t, length=t,
                         groups=heads, pipelined=True),
                GemmOp(p + "attn_av", "matmul", m=dh, n=t, k=t, groups=heads,
                       splits=((dh, 0, heads),)),
                VectorOp(p + "attn_av.requant", "requant", d * t),
                GemmOp(p + "proj", "token_linear", m=d, n=t, k=d),
                VectorOp(p + "res1", "add", d * t),
                norm(p + "norm2"),
                GemmOp(p + "fc1", "token_linear", m=hid, n=t, k=d),
                VectorOp(p + "gelu", "gelu", hid * t),
                GemmOp(p + "fc2", "token_linear", m=d, n=t, k=hid),
                VectorOp(p + "res2", "add", d * t)]
    ops += [norm("norm"), GemmOp("head", "linear", m=classes, n=1, k=d)]
    return Workload(name, tuple(ops))


def deit_workload(name: str) -> Workload:
    """DeiT-tiny, -small or -base (:data:`DEIT`) as a whole workload (:func:`vit_workload`)."""
    check_choice("model", name, tuple(DEIT))
    d, h = DEIT[name]
    return vit_workload(d, h, name=name)


def shipped_text() -> dict[str, str]:
    """File name → content of every shipped workload CSV."""
    files = {
        "resnet18.csv": resnet(18),
        "resnet50.csv": resnet(50),
        "mobilenet_v2.csv": mobilenet_v2(),
        **{f"{n}.csv": deit(d, h, mlp=4 * d) for n, (d, h) in DEIT.items()},
    }
    return {k: "\n".join(v) + "\n" for k, v in files.items()}


def write_shipped(directory: Path = WORKLOAD_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, text in shipped_text().items():
        p = directory / name
        p.write_text(text)
        out.append(p)
    return out


if __name__ == "__main__":
    for p in write_shipped(Path(sys.argv[1]) if len(sys.argv) > 1 else WORKLOAD_DIR):
        print(p)
