"""The torch side of quant: QAT modules and conversion (:mod:`~quant.torch.qat`), export to
the integer artifact (:mod:`~quant.torch.export`), the integer form in torch kernels
(:mod:`~quant.torch.twin`), PIM-QAT (:mod:`~quant.torch.pim_qat`), training
(:mod:`~quant.torch.train`), models (:mod:`~quant.torch.models`, ViTs in
:mod:`~quant.torch.vit`) and checkpoint loading (:mod:`~quant.torch.checkpoint`). Everything else in
``quant`` is numpy and does not import torch.
"""
