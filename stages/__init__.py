"""weakgen's stages: one CLI per pipeline step (``python -m stages.<step>``) plus the generic layer they share.

The steps only dispatch to chapter packages (stages/<chapter>/, listed in stages/chapters.py); datasets
live in stages/datasets/ and protocol-exact metrics in stages/metrics/.
"""
