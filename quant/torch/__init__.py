"""The torch side of quant: QAT modules and conversion (:mod:`~quant.torch.qat`), export to
the integer artifact (:mod:`~quant.torch.export`), the integer form in torch kernels
(:mod:`~quant.torch.twin`), PIM-QAT (:mod:`~quant.torch.pim_qat`), training
(:mod:`~quant.torch.train`) and models (:mod:`~quant.torch.models`). Everything else in
``quant`` is numpy and does not import torch.
"""
