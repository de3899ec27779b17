"""Keras conv nets for the tests (channels-last, as Keras users write them), non-square on purpose."""

import numpy as np


def conv_same_stride(keras):
    """TF 'same' with stride 2 on odd and even sizes (asymmetric padding), fused relu, Flatten -> Dense."""
    inputs = keras.Input((9, 12, 3))
    x = keras.layers.Conv2D(5, (3, 2), strides=2, padding="same", activation="relu", name="conv_a")(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="conv_b")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(6, name="dense")(x))


def grouped_dilated(keras):
    inputs = keras.Input((11, 8, 4))
    x = keras.layers.Conv2D(6, 3, dilation_rate=(2, 1), groups=2, use_bias=False, name="grouped")(inputs)
    x = keras.layers.Conv2D(5, (1, 3), padding="same", activation="tanh", name="wide")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling2D(name="gap")(x))


def depthwise(keras):
    inputs = keras.Input((10, 7, 3))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same", name="dw")(inputs)
    x = keras.layers.DepthwiseConv2D((2, 3), use_bias=False, name="dw_nobias")(x)
    x = keras.layers.Conv2D(4, 1, name="pointwise")(x)
    return keras.Model(inputs, keras.layers.GlobalMaxPooling2D(name="gmp")(x))


def batchnorm_pooling(keras):
    inputs = keras.Input((13, 10, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", name="conv")(inputs)
    x = keras.layers.BatchNormalization(epsilon=1e-3, name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.MaxPooling2D(2, padding="same", name="maxpool")(x)
    x = keras.layers.AveragePooling2D(3, strides=2, padding="same", name="avgpool")(x)
    x = keras.layers.BatchNormalization(center=False, name="bn_noshift")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="dense")(x))


def branches(keras):
    inputs = keras.Input((8, 11, 3))
    stem = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="stem")(inputs)
    a = keras.layers.Conv2D(4, 3, padding="same", name="branch_a")(stem)
    b = keras.layers.Conv2D(3, 1, name="branch_b")(stem)
    added = keras.layers.Add(name="add")([stem, a])
    multiplied = keras.layers.Multiply(name="multiply")([added, a])
    joined = keras.layers.Concatenate(name="concat")([multiplied, b, stem])
    padded = keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(joined)
    x = keras.layers.Conv2D(5, 3, strides=2, name="conv")(padded)
    x = keras.layers.Subtract(name="subtract")([x, keras.layers.Conv2D(5, 3, strides=2, name="conv2")(padded)])
    x = keras.layers.Maximum(name="maximum")([x, keras.layers.Conv2D(5, 3, strides=2, name="conv3")(padded)])
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def conv1d(keras):
    inputs = keras.Input((15, 4))
    x = keras.layers.Conv1D(6, 3, strides=2, padding="same", name="conv")(inputs)
    x = keras.layers.Conv1D(5, 2, dilation_rate=2, padding="causal", activation="elu", name="causal")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.MaxPooling1D(2, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def conv3d(keras):
    inputs = keras.Input((4, 6, 5, 2))
    x = keras.layers.Conv3D(3, (2, 3, 2), padding="same", strides=(1, 2, 1), name="conv")(inputs)
    x = keras.layers.AveragePooling3D(2, name="pool")(x)
    return keras.Model(inputs, keras.layers.GlobalAveragePooling3D(name="gap")(x))


def feature_map_output(keras):
    """A conv output (rank 4) as the model output, and a Flatten whose values are the output too."""
    inputs = keras.Input((6, 5, 3))
    x = keras.layers.Conv2D(4, 2, name="conv")(inputs)
    flat = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, [x, flat])


def separable_squeeze_excite(keras):
    """Input rescaling and normalization, SeparableConv, squeeze-and-excitation (Reshape + broadcast Multiply)."""
    inputs = keras.Input((12, 9, 3))
    x = keras.layers.Rescaling([0.5, 0.25, 2.0], offset=0.1, name="rescale")(inputs)
    x = keras.layers.Normalization(axis=-1, mean=[0.1, -0.2, 0.3], variance=[1.5, 0.5, 2.0], name="norm")(x)
    x = keras.layers.SeparableConv2D(6, 3, strides=2, padding="same", depth_multiplier=2, activation="silu",
                                     name="sep")(x)
    squeeze = keras.layers.GlobalAveragePooling2D(name="squeeze")(x)
    squeeze = keras.layers.Reshape((1, 1, 6), name="se_reshape")(squeeze)
    excite = keras.layers.Conv2D(6, 1, activation="sigmoid", name="excite")(squeeze)
    x = keras.layers.Multiply(name="scale")([x, excite])
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="dense")(x))


def transposed(keras):
    """Decoder-style upsampling: transposed convs with 'same'/'valid', stride 2, output_padding, dilation."""
    inputs = keras.Input((5, 7, 4))
    x = keras.layers.Conv2DTranspose(6, 3, strides=2, padding="same", activation="relu", name="up_same")(inputs)
    x = keras.layers.Conv2DTranspose(5, (2, 3), strides=(2, 1), padding="valid", name="up_valid")(x)
    x = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", output_padding=0, use_bias=False,
                                     name="up_padded")(x)
    # (TensorFlow's CPU kernels have no dilated transposed convolution, so none here.)
    x = keras.layers.Cropping2D(((1, 0), (0, 2)), name="crop")(x)
    return keras.Model(inputs, x)


def transposed_1d(keras):
    inputs = keras.Input((9, 3))
    x = keras.layers.Conv1DTranspose(4, 4, strides=3, padding="same", name="up")(inputs)
    x = keras.layers.Conv1DTranspose(2, 3, strides=2, padding="valid", output_padding=1, name="up_extra")(x)
    return keras.Model(inputs, keras.layers.Flatten(name="flatten")(x))


def upsampling(keras):
    """U-Net-style decoder: nearest (non-square factors) and bilinear upsampling, a skip concatenation."""
    inputs = keras.Input((6, 5, 3))
    down = keras.layers.Conv2D(4, 3, strides=2, padding="same", name="down")(inputs)
    up = keras.layers.UpSampling2D((2, 3), name="up_nearest")(down)
    up = keras.layers.Cropping2D(((0, 0), (3, 1)), name="crop")(up)
    joined = keras.layers.Concatenate(name="skip")([up, inputs])
    x = keras.layers.UpSampling2D(2, interpolation="bilinear", name="up_bilinear")(joined)
    return keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same", name="head")(x))


def upsampling_1d(keras):
    inputs = keras.Input((7, 3))
    x = keras.layers.UpSampling1D(3, name="up")(inputs)
    return keras.Model(inputs, keras.layers.Conv1D(2, 3, name="conv")(x))


def prelu_softmax(keras):
    """PReLU per channel (shared spatial axes) and on features, Softmax over the channel axis of a feature map."""
    inputs = keras.Input((7, 6, 3))
    x = keras.layers.Conv2D(5, 3, name="conv")(inputs)
    x = keras.layers.PReLU(shared_axes=[1, 2], name="prelu_channels")(x)
    x = keras.layers.Softmax(axis=-1, name="softmax_channels")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, name="dense")(x)
    return keras.Model(inputs, keras.layers.PReLU(name="prelu_features")(x))


def one_d_layers(keras):
    """DepthwiseConv1D, SeparableConv1D, Average and Minimum merges, Flatten -> Dense on a sequence."""
    inputs = keras.Input((13, 4))
    a = keras.layers.DepthwiseConv1D(3, depth_multiplier=2, padding="same", name="dw")(inputs)
    b = keras.layers.SeparableConv1D(8, 3, padding="same", activation="relu", name="sep")(inputs)
    x = keras.layers.Average(name="average")([a, b])
    x = keras.layers.Minimum(name="minimum")([x, keras.layers.Conv1D(8, 1, name="pointwise")(inputs)])
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def three_d_layers(keras):
    """Conv3DTranspose, BatchNorm and MaxPooling3D on volumes, Flatten -> Dense from a 3-D feature map."""
    inputs = keras.Input((3, 5, 4, 2))
    x = keras.layers.Conv3DTranspose(3, (2, 3, 2), strides=(2, 1, 2), padding="same", name="up")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.MaxPooling3D((2, 2, 2), name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="dense")(x))


def permuted(keras):
    """Permute of a feature map (height and width swapped), then conv and Flatten -> Dense."""
    inputs = keras.Input((7, 5, 3))
    x = keras.layers.Permute((2, 1, 3), name="swap_hw")(inputs)
    x = keras.layers.Conv2D(4, (3, 2), name="conv")(x)
    x = keras.layers.Permute((3, 1, 2), name="channels_to_height")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def two_inputs(keras):
    """Two image inputs of different sizes, joined after pooling."""
    big = keras.Input((12, 10, 3), name="big")
    small = keras.Input((6, 5, 2), name="small")
    a = keras.layers.MaxPooling2D(2, name="pool")(keras.layers.Conv2D(4, 3, padding="same", name="conv_big")(big))
    b = keras.layers.Conv2D(4, 1, name="conv_small")(small)
    x = keras.layers.Concatenate(name="join")([a, b])
    return keras.Model([big, small], keras.layers.GlobalAveragePooling2D(name="gap")(x))


MODELS = {f.__name__: f for f in (conv_same_stride, grouped_dilated, depthwise, batchnorm_pooling, branches, conv1d,
                                  conv3d, feature_map_output, separable_squeeze_excite, transposed, transposed_1d,
                                  upsampling, upsampling_1d, prelu_softmax, one_d_layers, three_d_layers, two_inputs,
                                  permuted)}


def seeded(model, seed=0):
    """Random weights; BatchNorm variances positive and away from zero."""
    rng = np.random.default_rng(seed)
    weights = []
    for variable in model.weights:
        values = rng.standard_normal(variable.shape).astype("float32") * 0.5
        if "variance" in getattr(variable, "path", variable.name):  # Keras 3 has .path, Keras 2 .name
            values = np.abs(values) + 0.5
        weights.append(values)
    model.set_weights(weights)
    return model
