"""The torch side of quant: QAT modules and conversion (:mod:`~quant.torch.qat`), export to
the integer artifact (:mod:`~quant.torch.export`), the integer form in torch kernels
(:mod:`~quant.torch.twin`), PIM-QAT (:mod:`~quant.torch.pim_qat`), training
(:mod:`~quant.torch.train`), models (:mod:`~quant.torch.models`, ViTs in
:mod:`~quant.torch.vit`) and checkpoint loading (:mod:`~quant.torch.checkpoint`). Everything else in
``quant`` is numpy and does not import torch.

Importing this package pins torch's CPU kernel dispatch (:mod:`~quant.torch.dispatch`) so
that training gives the same bits on other x86-64 machines with AVX2.
"""

from quant.torch.dispatch import pin_cpu_dispatch

pin_cpu_dispatch()  # before any module of quant.torch imports torch
