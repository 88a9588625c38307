"""Optimizers the trainer compiles with, registered on ``import keras_coordatt``.

A trained run's ``model.keras`` holds its optimizer; registering it here lets
``keras.saving.load_model`` read that file after importing only the package.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_coordatt")
class LayerwiseSGD(keras.optimizers.SGD):
    """SGD whose step on some variables is a multiple of the learning rate, or Adam's.

    ``lr_multipliers`` maps variable paths (``variable.path``, e.g.
    ``"block_3_attention/conv_h/kernel"``) to a factor on the learning rate
    for that variable; every other variable takes the learning rate as it
    is. The trainer gives the layers a network's starting weights did not
    provide (attention inserted into an ImageNet network, a new head)
    ``new_layer_lr_multiplier``, so they learn faster than the pretrained
    layers around them.

    ``adam_paths``: variables that take Adam's step instead of SGD's (at their
    learning rate, multiplier included, with bias-corrected moments
    ``beta_1`` / ``beta_2``). Adam's step is about the learning rate whatever
    the gradient's size, which SGD's is not: the trainer uses it for inserted
    attention, whose gradients differ by orders of magnitude between shallow
    and deep blocks. Weight decay (decoupled) is the same for every variable.
    """

    def __init__(self, lr_multipliers=None, adam_paths=(), beta_1=0.9, beta_2=0.999,
                 adam_epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.adam_paths = sorted(adam_paths or ())
        self.beta_1, self.beta_2, self.adam_epsilon = beta_1, beta_2, adam_epsilon

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        # update_step may see a backend variable without .path: key by the optimizer's index.
        self._multipliers = {self._get_variable_index(variable): self.lr_multipliers[variable.path]
                             for variable in variables if variable.path in self.lr_multipliers}
        wanted = set(self.adam_paths)
        self._moments = {}
        for variable in variables:
            if variable.path in wanted:
                self._moments[self._get_variable_index(variable)] = (
                    self.add_variable_from_reference(variable, "adam_m"),
                    self.add_variable_from_reference(variable, "adam_v"))

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        multiplier = self._multipliers.get(index)
        if multiplier is not None:
            learning_rate = learning_rate * multiplier
        if index not in self._moments:
            super().update_step(gradient, variable, learning_rate)
            return
        dtype = variable.dtype
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
        first, second = self._moments[index]
        self.assign_add(first, ops.multiply(ops.subtract(gradient, first), 1 - beta_1))
        self.assign_add(second, ops.multiply(ops.subtract(ops.square(gradient), second), 1 - beta_2))
        rate = (ops.cast(learning_rate, dtype) * ops.sqrt(1 - ops.power(beta_2, step))
                / (1 - ops.power(beta_1, step)))
        self.assign_sub(variable, ops.divide(ops.multiply(first, rate),
                                             ops.add(ops.sqrt(second), self.adam_epsilon)))

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": self.lr_multipliers,
                "adam_paths": self.adam_paths, "beta_1": self.beta_1, "beta_2": self.beta_2,
                "adam_epsilon": self.adam_epsilon}
