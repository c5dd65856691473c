"""The toy model: a scale applied to the data mean."""


class Toy:
    def __init__(self, scale: float = 1.0):
        self.scale = scale

    @classmethod
    def from_config(cls, cfg: dict) -> "Toy":
        return cls(**cfg)
