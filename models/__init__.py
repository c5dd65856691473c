"""Model families of the thesis, one module each; nn.Module code and losses only (nothing from stages/).

    srvp.py      SRVP (chapter 3.2)             svg.py       SVG-LP baseline (chapter 3.2)
    mvbigan.py   MV-BiGAN (chapter 3.1)         redo.py      ReDO and its mask network F (chapter 5)
    blocks.py    encoders/decoders, MLPs, Gaussians, init    gan_blocks.py  GAN init helpers (ReDO)

The model contract: a family's class has ``from_config(cfg: dict)`` that builds it from its params.yaml
``model:`` block (unknown or missing keys raise ModelConfigError). Which class serves which family is
declared by its chapter (stages/<chapter>/__init__.py), and ``stages.checkpoints.build_model(family, cfg)``
instantiates it. This package imports no module itself, so a stage depends only on the models it uses.
"""
