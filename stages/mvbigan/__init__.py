"""Chapter 3.1, MV-BiGAN: views, training, the diversity/error evaluation, figures 3.5-3.8, graph stages."""
