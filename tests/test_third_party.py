"""Models nobody here wrote, with seeded random weights: torchvision and timm classification models to Keras and
ONNX, keras.applications to torch and ONNX. Judged outside wconv: the original framework's own predictions
against the port's, in its own framework. What wconv refuses is refused with exit 3, naming why.

The fast set runs in CI; ``-m slow`` runs every model the README lists (tests/third_party.py has the set-up).
"""

from __future__ import annotations

import numpy as np
import pytest

import converter
from conftest import RUNNERS, TARGET_SUFFIX, assert_close, run_torch_model
from third_party import import_timm, import_torchvision
from torch_convnets import seeded

SIZE = (3, 96, 128)  # channels first, h != w
SIZES = {"vgg11_bn": (3, 224, 224), "inception_v3": (3, 107, 139),  # VGG's adaptive pool needs 7 | 224 / 32
         "vit_b_16": (3, 96, 96)}  # torchvision's ViT takes square images of its image_size
# arguments a model needs for the input size (a ViT's position table has one row per patch)
MODEL_ARGS = {"vit_b_16": {"image_size": 96}, "vit_tiny_patch16_224": {"img_size": SIZE[1:]},
              "deit_tiny_distilled_patch16_224": {"img_size": SIZE[1:]}}

TORCHVISION_FAST = ["mobilenet_v3_small", "shufflenet_v2_x0_5", "squeezenet1_0"]
TORCHVISION_SLOW = ["vit_b_16", "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet",
                    "inception_v3", "mnasnet0_5", "mobilenet_v2", "regnet_x_400mf", "regnet_y_400mf", "resnet18",
                    "resnext50_32x4d", "vgg11_bn", "wide_resnet50_2"]
TIMM_FAST = ["convnext_atto", "vit_tiny_patch16_224"]
TIMM_SLOW = ["ghostnet_100", "mixnet_s", "resnet18", "resnet50d", "efficientnet_b0", "mobilenetv3_large_100", "regnety_002", "densenet121",
             "rexnet_100", "dla34", "cspresnet50", "hrnet_w18_small", "resnext26ts", "efficientnetv2_rw_t",
             "regnetz_b16", "resnetv2_50", "repvgg_a0", "mobileone_s0", "lcnet_050", "selecsls42", "dpn68",
             "res2net50_26w_4s", "xception41", "seresnext26d_32x4d", "gernet_s", "cspdarknet53", "ese_vovnet19b_dw",
             "deit_tiny_distilled_patch16_224", "nf_resnet26", "nfnet_l0", "tf_efficientnet_b0", "tf_mixnet_s",
             "nasnetalarge", "pnasnet5large", "vgg11_bn"]  # VGG: a branch on x.shape, which torch.fx could not trace
# model -> why wconv refuses it (a part of the refusal's message)
TORCH_REFUSED = {
    ("torchvision", "swin_t"): "direct use of the tensor",  # relative position bias tables, indexed
    ("timm", "mobilevit_xxs"): "'size' (size)",  # patches reshaped to (B * patch area, ...): sizes from the batch
    ("timm", "skresnet18"): "torch.stack",  # selective-kernel attention sums a stack of branches
    ("timm", "tresnet_m"): "rank 6",  # space-to-depth
}


def torch_model(library: str, name: str):
    """(model, --module, --module-args) for a classifier with 10 classes."""
    if library == "torchvision":
        models = import_torchvision().models
        args = {"num_classes": 10, **({"aux_logits": False, "init_weights": False}
                                      if name in ("googlenet", "inception_v3") else {}), **MODEL_ARGS.get(name, {})}
        return getattr(models, name)(**args), f"torchvision.models:{name}", args
    args = {"model_name": name, "num_classes": 10, **MODEL_ARGS.get(name, {})}
    return import_timm().create_model(**args), "timm:create_model", args


def torch_port(library, name, target, tmp_path):
    import torch

    model, module, args = torch_model(library, name)
    model = seeded(model, seed=1)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    shape = SIZES.get(name, SIZE)
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module=module, module_args=args, input_shape=shape)
    x = np.random.default_rng(3).standard_normal((2, *shape)).astype(np.float32)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x), what="logits")


def _cases(library, names, marks=()):
    return [pytest.param(library, name, target, marks=marks, id=f"{library}-{name}-{target}")
            for name in names for target in ("keras", "onnx")]


@pytest.mark.parametrize("library, name, target", _cases("torchvision", TORCHVISION_FAST) + _cases("timm", TIMM_FAST)
                         + _cases("torchvision", TORCHVISION_SLOW, pytest.mark.slow)
                         + _cases("timm", TIMM_SLOW, pytest.mark.slow))
def test_torch_library_model(library, name, target, tmp_path):
    torch_port(library, name, target, tmp_path)


@pytest.mark.parametrize("target", ["keras", "onnx", "torch"])
def test_timm_tensorflow_same_padding_layers(target, tmp_path):
    """timm's Conv2dSame, MaxPool2dSame and AvgPool2dSame compute TensorFlow's 'SAME' padding from the input's size
    in forward(), where fx cannot trace: they are read whole, as the padded layers they are."""
    import torch

    import_timm()
    from timm_layers import SamePadded

    model = seeded(SamePadded(), seed=2)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.pt", out, module="timm_layers:SamePadded", input_shape=SamePadded.input_shape)
    x = np.random.default_rng(4).standard_normal((2, *SamePadded.input_shape)).astype(np.float32)
    assert_close(run_torch_model(model, x), RUNNERS[target](out, x))


@pytest.mark.slow
@pytest.mark.parametrize("library, name", sorted(TORCH_REFUSED))
def test_torch_library_model_refused(library, name, tmp_path):
    import torch

    model, module, args = torch_model(library, name)
    torch.save(model.state_dict(), tmp_path / "a.pt")
    with pytest.raises(converter.WconvError) as error:
        converter.convert(tmp_path / "a.pt", tmp_path / "b.onnx", module=module, module_args=args,
                          input_shape=(3, 224, 224))
    assert error.value.exit_code == 3 and TORCH_REFUSED[(library, name)] in str(error.value)


KERAS_APPLICATIONS = ["ConvNeXtTiny", "DenseNet121", "EfficientNetB0", "EfficientNetV2B0", "InceptionResNetV2",
                      "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "NASNetMobile",
                      "ResNet50", "ResNet50V2", "VGG16", "Xception"]
KERAS_SIZES = {"NASNetMobile": (224, 224, 3), "InceptionV3": (107, 139, 3), "InceptionResNetV2": (107, 139, 3)}


@pytest.mark.slow
@pytest.mark.parametrize("target", ["torch", "onnx"])
@pytest.mark.parametrize("name", KERAS_APPLICATIONS)
def test_keras_application_sweep(name, target, tmp_path, keras):
    from test_architectures import seeded_keras
    from test_convnets import canonical_input, keras_outputs, run_target

    size = KERAS_SIZES.get(name, (96, 128, 3))
    model = getattr(keras.applications, name)(weights=None, input_shape=size, classifier_activation=None)
    seeded_keras(model).save(tmp_path / "a.keras")
    out = tmp_path / f"b{TARGET_SUFFIX[target]}"
    converter.convert(tmp_path / "a.keras", out)
    x = canonical_input((size[2], *size[:2]), batch=2)
    assert_close(keras_outputs(model, x)[0], run_target(target, out, x)[0], what="logits")
