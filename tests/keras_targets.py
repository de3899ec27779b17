"""Keras models a user wrote by hand, as targets of ``wconv port``: their layer names share nothing with the torch
models whose weights they take (tests/torch_resnet.py, tests/sequence_models.py)."""


def resnet18(classes=10, width=16, epsilon=1e-5, input_shape=(64, 80, 3)):
    """tests/torch_resnet.py's ResNet-18 as a Keras user writes it: stride-2 convs after ZeroPadding2D (Keras'
    'same' would pad on one side only), BatchNorm with torch's epsilon (``epsilon`` to get it wrong)."""
    import keras
    from keras import layers

    def conv_bn(x, filters, size, stride, name):
        if stride > 1 or size > 1:
            x = layers.ZeroPadding2D(size // 2, name=f"{name}_pad")(x)
        x = layers.Conv2D(filters, size, strides=stride, use_bias=False, name=f"{name}_conv")(x)
        return layers.BatchNormalization(epsilon=epsilon, name=f"{name}_norm")(x)

    def block(x, filters, stride, name):
        out = layers.ReLU(name=f"{name}_relu_a")(conv_bn(x, filters, 3, stride, f"{name}_a"))
        out = conv_bn(out, filters, 3, 1, f"{name}_b")
        if stride != 1 or x.shape[-1] != filters:
            x = conv_bn(x, filters, 1, stride, f"{name}_shortcut")
        return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([out, x]))

    image = keras.Input(input_shape, name="image")
    x = layers.ReLU(name="stem_relu")(conv_bn(image, width, 7, 2, "stem"))
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(layers.ZeroPadding2D(1, name="pool_pad")(x))
    for stage, filters in enumerate([width, width * 2, width * 4, width * 8]):
        x = block(x, filters, 1 if stage == 0 else 2, f"stage{stage}_first")
        x = block(x, filters, 1, f"stage{stage}_second")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(image, layers.Dense(classes, name="logits")(x), name="hand_resnet18")
