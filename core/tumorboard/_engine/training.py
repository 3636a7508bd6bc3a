"""Options and settings shared by components that train networks (no JAX import here)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field, PositiveInt, create_model

from .components import Options


@dataclass
class TrainSettings:
    """Optimiser and stopping rule of ``tumorboard.api.fit_adamw``."""

    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 256
    epochs: int = 200
    patience: int = 20


def training_options(*, epochs: int = 200, patience: int = 20, batch_size: int = 128, learning_rate: float = 1e-3,
                     weight_decay: float = 1e-4, validation_fraction: float = 0.2) -> type[BaseModel]:
    """A base for a component's ``Options`` with the shared training fields, at these defaults.

    ``class Options(training_options(batch_size=64)): ...`` gives epochs,
    patience, batch_size, learning_rate, weight_decay and validation_fraction
    with one description each across the project.
    """
    return create_model(
        "TrainingOptions",
        __base__=Options,
        epochs=(PositiveInt, Field(epochs, description="Most epochs; early stopping usually ends sooner.")),
        patience=(PositiveInt, Field(patience, description="Epochs without a better validation loss before stopping.")),
        batch_size=(PositiveInt, Field(batch_size, description="Patients (images) per step.")),
        learning_rate=(float, Field(learning_rate, gt=0, description="AdamW learning rate.")),
        weight_decay=(float, Field(weight_decay, ge=0, description="AdamW weight decay.")),
        validation_fraction=(float, Field(validation_fraction, ge=0, lt=0.9,
                                          description="Share of the training patients held out for early stopping.")),
    )


def train_settings(options: Any) -> TrainSettings:
    """The ``TrainSettings`` of options built on ``training_options``."""
    return TrainSettings(options.learning_rate, options.weight_decay, options.batch_size, options.epochs, options.patience)
