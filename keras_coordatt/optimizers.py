"""Optimizers the trainer compiles with, registered on ``import keras_coordatt``.

A trained run's ``model.keras`` holds its optimizer; registering it here lets
``keras.saving.load_model`` read that file after importing only the package.
"""

import keras


@keras.saving.register_keras_serializable(package="keras_coordatt")
class LayerwiseSGD(keras.optimizers.SGD):
    """SGD whose step on some variables is a multiple of the learning rate.

    ``lr_multipliers`` maps variable paths (``variable.path``, e.g.
    ``"block_3_attention/conv_h/kernel"``) to a factor on the learning rate
    for that variable; every other variable takes the learning rate as it
    is. The trainer gives the layers a network's starting weights did not
    provide (attention inserted into an ImageNet network, a new head)
    ``new_layer_lr_multiplier``, so they learn faster than the pretrained
    layers around them. Weight decay is unchanged.
    """

    def __init__(self, lr_multipliers=None, **kwargs):
        super().__init__(**kwargs)
        self.lr_multipliers = dict(lr_multipliers or {})

    def build(self, variables):
        super().build(variables)
        # update_step may see a backend variable without .path: key by the optimizer's index.
        self._multipliers = {self._get_variable_index(variable): self.lr_multipliers[variable.path]
                             for variable in variables if variable.path in self.lr_multipliers}

    def update_step(self, gradient, variable, learning_rate):
        multiplier = self._multipliers.get(self._get_variable_index(variable))
        if multiplier is not None:
            learning_rate = learning_rate * multiplier
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "lr_multipliers": self.lr_multipliers}
