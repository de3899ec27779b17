"""A Functional subclass as keras-hub writes its backbones: constructor arguments in, layers built in __init__,
only the arguments saved."""

import keras


@keras.saving.register_keras_serializable(package="wconv_tests")
class TinyBackbone(keras.Model):
    def __init__(self, width=6, image_shape=(9, 7, 3), **kwargs):
        inputs = keras.Input(image_shape, name="images")
        x = keras.layers.Conv2D(width, 3, padding="same", name="stem_conv")(inputs)
        x = keras.layers.BatchNormalization(name="stem_bn")(x)
        x = keras.layers.ReLU(name="stem_relu")(x)
        shortcut = x
        x = keras.layers.Conv2D(width, 3, padding="same", name="block_conv")(x)
        x = keras.layers.Add(name="block_add")([x, shortcut])
        super().__init__(inputs=inputs, outputs=x, **kwargs)
        self.width, self.image_shape = width, tuple(image_shape)

    def get_config(self):
        return {"name": self.name, "width": self.width, "image_shape": self.image_shape}
