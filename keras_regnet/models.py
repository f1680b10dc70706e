"""AnyNet, RegNetX32 and the 24 RegNet constructors, in the Keras Applications style.

All models take raw pixels in [0, 255] (a `Rescaling(1/255)` layer comes
first when `include_preprocessing=True`), are functional Keras models with
explicit layer names (see `keras_regnet.blocks`), and apply
`classifier_activation` (tf-keras validated it but never applied it).
"""

import keras
from keras import layers

from keras_regnet import blocks, complexity, zoo
from keras_regnet import weights as weights_lib
from keras_regnet.regnet_model import RegNetModel
from keras_regnet.specs import AnyNetSpec
from keras_regnet.validation import check_bool, check_choice, check_input_shape, check_int

BASE_DOCSTRING = """Instantiates the {name} architecture{extra}.

    Reference: [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678)
    (CVPR 2020). {what}

    The model takes raw pixel values in [0, 255]: with
    `include_preprocessing=True` a `Rescaling(1/255)` layer comes first.

    Args:
        include_top: whether to include the classifier (global average
            pooling + dense layer). Defaults to `True`.
        weights: `None` (random initialization), {imagenet}a path to a Keras
            weights file, or a path to a legacy `.h5` weights file written by
            tf-keras's RegNet of the same name. Defaults to `{default_weights}`.
        input_tensor: optional Keras tensor (output of `keras.Input()`) to use
            as the image input of the model.
        input_shape: optional `(height, width, channels)`; spatial sizes may be
            `None`, and must otherwise be at least {min_size}. Defaults to
            `{default_shape}` (`(None, None, {channels})` without the top).
        pooling: with `include_top=False`: `None` (4D feature map output),
            `"avg"` or `"max"` (global pooling, 2D output).
        classes: number of classes of the classifier. Defaults to `{classes}`.
        classifier_activation: activation of the classifier: a name, a
            callable, or `None` for logits. With pretrained weights only `None`
            or `"softmax"`. Defaults to `"softmax"`.
        include_preprocessing: whether to rescale inputs by 1/255 inside the
            model. Defaults to `True`.
        zero_init_last: start the last batch-norm gamma of every residual
            branch at 0, so each block starts as its shortcut (timm's
            `zero_init_last`); loaded weights replace it. Defaults to `True`.
        name: the model name, also the prefix of every layer name.

    Returns:
        A `keras.Model` instance.
"""


def _resolve_input_shape(input_shape, input_tensor, default_shape, include_top):
    if input_shape is not None:
        return tuple(input_shape)
    if input_tensor is not None:
        return tuple(input_tensor.shape[1:])
    if include_top:
        return tuple(default_shape)
    return (None, None, default_shape[2])


def _check_arguments(include_top, weights, pooling, classes, classifier_activation, zoo_name):
    check_bool("include_top", include_top)
    if weights == "imagenet" and zoo_name not in zoo.TF_KERAS_MODELS:
        raise ValueError(f"weights='imagenet' is only available for {', '.join(zoo.TF_KERAS_MODELS)}")
    if (
        weights is not None
        and weights != "imagenet"
        and not isinstance(weights, str)
        and not hasattr(weights, "__fspath__")
    ):
        raise TypeError(f"weights must be None, 'imagenet' or a file path, got {weights!r}")
    check_choice("pooling", pooling, (None, "avg", "max"))
    check_int("classes", classes, 1)
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError(f"weights='imagenet' with include_top=True needs classes=1000, got {classes}")
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError):
            raise ValueError(f"classifier_activation {classifier_activation!r} is not a Keras activation") from None
    if weights is not None and include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(
            f"with pretrained weights, classifier_activation must be None or 'softmax', got {classifier_activation!r}"
        )


def _build(
    spec,
    *,
    zoo_name,
    default_shape,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    include_preprocessing,
    zero_init_last,
    name,
):
    if not isinstance(spec, AnyNetSpec):
        raise TypeError(f"spec must be a keras_regnet.AnyNetSpec, got {type(spec).__name__}")
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _check_arguments(include_top, weights, pooling, classes, classifier_activation, zoo_name)
    check_bool("zero_init_last", zero_init_last)
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "keras_regnet models are channels_last only (inputs [batch, height, width, channels]), but "
            f"keras.config.image_data_format() is {keras.config.image_data_format()!r}: call "
            "keras.config.set_image_data_format('channels_last') before building (TensorFlow on CPU "
            "runs channels_last convolutions only)"
        )
    shape = _resolve_input_shape(input_shape, input_tensor, default_shape, include_top)
    shape = check_input_shape("input_shape", shape, allow_none=True, min_side=spec.min_input_size)
    if weights == "imagenet" and shape[2] != 3:
        raise ValueError(f"weights='imagenet' needs 3 input channels, got input_shape {shape!r}")
    complexity.check_buildable(spec, shape, classes if include_top else 0)

    if input_tensor is None:
        inputs = img_input = layers.Input(shape=shape, name=f"{name}_input")
    else:
        if not keras.utils.is_keras_tensor(input_tensor):
            input_tensor = layers.Input(tensor=input_tensor, shape=shape)
        img_input = input_tensor
        inputs = keras.utils.get_source_inputs(input_tensor)[0]

    x = img_input
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 255.0, name=f"{name}_rescaling")(x)
    x = blocks.body(x, spec, name, zero_init_last=zero_init_last)
    if include_top:
        x = blocks.head(x, classes, classifier_activation, name)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name=f"{name}_avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name=f"{name}_max_pool")(x)
    model = RegNetModel(inputs, x, name=name)

    if weights == "imagenet":
        weights_lib.load_legacy_h5(model, weights_lib.imagenet_weights_path(zoo_name, include_top))
    elif weights is not None:
        weights_lib.load_weights(model, weights)
    return model


def AnyNet(
    spec=None,
    *,
    stem_width=None,
    stages=None,
    block="x",
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    include_preprocessing=True,
    zero_init_last=True,
    name="anynet",
):
    """Instantiates an AnyNet: stem -> stages of blocks -> head.

    Give either `spec` (a `keras_regnet.AnyNetSpec`) or `stem_width` and
    `stages` (StageSpecs, or d2l-style tuples `(depth, width, group_width,
    bottleneck_ratio[, stride, se_ratio])`) with `block` in "x", "y",
    "resnet_bottleneck", "vgg", "inception". Other arguments as for
    `keras_regnet.RegNetX002`; the default input is `(224, 224, 3)`, and
    `weights` may be `None` or a weights file (there are no published ones).
    `zero_init_last` (default True, as timm) starts the last batch-norm gamma
    of every residual branch at 0; loaded weights replace it.
    """
    if spec is not None and (stem_width is not None or stages is not None):
        raise ValueError("give either spec or stem_width/stages, not both")
    if spec is None:
        if stem_width is None or stages is None:
            raise ValueError("AnyNet needs spec=AnyNetSpec(...) or both stem_width and stages")
        spec = AnyNetSpec(stem_width=stem_width, stages=stages, block=block)
    return _build(
        spec,
        zoo_name=None,
        default_shape=(224, 224, 3),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        include_preprocessing=include_preprocessing,
        zero_init_last=zero_init_last,
        name=name,
    )


def anynet_from_params(params, *, input_shape=None, classes=10, **kwargs):
    """An AnyNet from a dict shaped like the blog's `params`.

    Keys: `block_type` ("bottleneck"/"resnet_bottleneck", "vgg", "inception";
    "x"/"y" also accepted), `num_stages`, `num_blocks_per_stage` (m ints),
    `num_channels` (m + 1 ints: stem width, then each stage's width),
    `bottleneck_ratio` (the blog's *expansion*: the 3x3 runs at width x ratio),
    `group_width`. As in the blog (a CIFAR network), the stem keeps the
    resolution and the first stage does not downsample; the default input is
    32x32x3 and classes default to 10.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict like the blog's, got {type(params).__name__}")
    required = ("block_type", "num_stages", "num_blocks_per_stage", "num_channels")
    missing = [k for k in required if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; it needs {list(required)}")
    block = {"bottleneck": "resnet_bottleneck"}.get(params["block_type"], params["block_type"])
    m = params["num_stages"]
    depths, channels = list(params["num_blocks_per_stage"]), list(params["num_channels"])
    if len(depths) != m or len(channels) != m + 1:
        raise ValueError(
            f"num_blocks_per_stage needs num_stages={m} entries and num_channels {m + 1} "
            f"(stem + stages), got {len(depths)} and {len(channels)}"
        )
    expansion = params.get("bottleneck_ratio", 1)
    group_width = params.get("group_width", 1)
    stages = [
        (depth, width, group_width, 1.0 / expansion, 1 if i == 0 else 2)
        for i, (depth, width) in enumerate(zip(depths, channels[1:]))
    ]
    spec = AnyNetSpec(stem_width=channels[0], stages=stages, block=block, stem_stride=1)
    kwargs.setdefault("name", f"anynet_{block}")
    return AnyNet(spec, input_shape=input_shape or (32, 32, 3), classes=classes, **kwargs)


def _zoo_docstring(zoo_name):
    entry = zoo.get_entry(zoo_name)
    spec = zoo.get_spec(zoo_name)
    if entry.source == "tf-keras":
        extra = f" ({entry.block.upper()} block, about {int(zoo_name[-3:]) / 10:g} GF)"
        what = "tf-keras shipped it and Keras 3 dropped it; same weights, same outputs."
        imagenet, default_weights = '`"imagenet"` (the weights tf-keras published), ', '"imagenet"'
    else:
        extra = " of d2l (Dive into Deep Learning, section 8.8)"
        stages = " and ".join(f"({s.depth} blocks, width {s.width})" for s in spec.stages)
        what = f"Stem {spec.stem_width}; stages {stages}, group width {entry.group_width}, no bottleneck."
        imagenet, default_weights = "", "None"
    return BASE_DOCSTRING.format(
        name=zoo_name,
        extra=extra,
        what=what,
        imagenet=imagenet,
        default_weights=default_weights,
        min_size=spec.min_input_size,
        default_shape=entry.input_shape,
        channels=entry.input_shape[2],
        classes=entry.classes,
    )


def _make_zoo_constructor(zoo_name):
    entry = zoo.get_entry(zoo_name)

    def constructor(
        include_top=True,
        weights="imagenet" if entry.source == "tf-keras" else None,
        input_tensor=None,
        input_shape=None,
        pooling=None,
        classes=entry.classes,
        classifier_activation="softmax",
        include_preprocessing=True,
        zero_init_last=True,
        name=zoo_name.lower(),  # noqa: B008 - each constructor's own default, fixed when it is made
    ):
        return _build(
            zoo.get_spec(zoo_name),
            zoo_name=zoo_name,
            default_shape=entry.input_shape,
            include_top=include_top,
            weights=weights,
            input_tensor=input_tensor,
            input_shape=input_shape,
            pooling=pooling,
            classes=classes,
            classifier_activation=classifier_activation,
            include_preprocessing=include_preprocessing,
            zero_init_last=zero_init_last,
            name=name,
        )

    constructor.__name__ = constructor.__qualname__ = zoo_name
    constructor.__doc__ = _zoo_docstring(zoo_name)
    return constructor


# One constructor per zoo row (RegNetX32, RegNetX002 ... RegNetY320), as module-level names.
for _zoo_name in zoo.names():
    globals()[_zoo_name] = _make_zoo_constructor(_zoo_name)
del _zoo_name

load_weights = weights_lib.load_weights


def build_model(model, *, input_shape=None, classes=None, weights=None, **kwargs):
    """A model by zoo name or spec .json path (what the command line accepts).

    Unlike the zoo constructors, `weights` defaults to None here: commands
    build models to train them. `input_shape`/`classes` default to the zoo's.
    """
    name, spec = zoo.resolve(model)
    if name in zoo.ZOO:
        input_shape = input_shape or zoo.default_input_shape(name)
        classes = classes or zoo.default_classes(name)
        return globals()[name](weights=weights, input_shape=input_shape, classes=classes, **kwargs)
    safe = "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "anynet"
    kwargs.setdefault("name", safe)
    return AnyNet(spec, weights=weights, input_shape=input_shape or (224, 224, 3), classes=classes or 1000, **kwargs)


__all__ = ["AnyNet", "RegNetModel", "anynet_from_params", "build_model", "load_weights", *zoo.names()]


def preprocess_input(x, data_format=None):
    """A pass-through, as for Keras' RegNet: the models rescale raw [0, 255] pixels themselves.

    Kept for the Keras Applications convention (`model(preprocess_input(x))`);
    `data_format` is accepted and ignored.
    """
    return x


def decode_predictions(preds, top=5):
    """ImageNet's (class id, class name, score) lists for a batch of predictions, as Keras Applications'.

    Fetches ImageNet's class index with `keras.utils.get_file` on first use (cached after).
    """
    return keras.applications.imagenet_utils.decode_predictions(preds, top=top)
