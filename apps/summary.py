"""`keras-regnet summary MODEL`: output shape of the stem, each stage and the head, then complexity."""

import re

from keras_regnet import complexity, zoo


def parse_shape(text):
    """'96,96,1' -> (96, 96, 1)."""
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"--input-shape must be HEIGHT,WIDTH,CHANNELS of positive ints, got {text!r}")
    return shape


def add_arguments(parser):
    parser.add_argument("model", help=f"a zoo model ({', '.join(zoo.names())}) or a spec .json file")
    parser.add_argument(
        "--input-shape",
        type=parse_shape,
        default=None,
        help="HEIGHT,WIDTH,CHANNELS (default: the model's, e.g. 96,96,1 for RegNetX32)",
    )
    parser.add_argument("--classes", type=int, default=None, help="classifier width (default: the model's)")


def _group(layer_name, model_name):
    """'stem', 'stage3', 'head' or None for a layer name."""
    rest = layer_name[len(model_name) + 1 :] if layer_name.startswith(model_name + "_") else layer_name
    match = re.match(r"(stage\d+)_", rest)
    if match:
        return match.group(1)
    if rest.startswith("stem_"):
        return "stem"
    if rest.startswith(("head_", "predictions")):
        return "head"
    return None


def rows(model):
    """[(group, output shape, params)] in order, from the built Keras model."""
    result = {}
    for layer in model.layers:
        group = _group(layer.name, model.name)
        if group is None:
            continue
        shape, params = result.get(group, (None, 0))
        result[group] = ((1, *layer.output.shape[1:]), params + layer.count_params())
    return [(group, shape, params) for group, (shape, params) in result.items()]


def run(args):
    name, spec = zoo.resolve(args.model)  # a bad spec file fails here, before TensorFlow loads
    if args.classes is not None and args.classes < 1:
        raise ValueError(f"--classes must be >= 1, got {args.classes}")
    from keras_regnet.models import build_model

    input_shape = args.input_shape or (zoo.default_input_shape(name) if name in zoo.ZOO else (224, 224, 3))
    classes = args.classes or (zoo.default_classes(name) if name in zoo.ZOO else 1000)
    model = build_model(args.model, input_shape=input_shape, classes=classes)
    print(f"{name}: {spec.describe()}")
    print(f"input {(1, *input_shape)}")
    for group, shape, params in rows(model):
        print(f"{group:>8} output shape: {str(shape):<22} params: {params:,}")
    cx = complexity.count(spec, input_shape, classes)
    print(f"flops (multiply-adds): {cx.flops:,}  params: {cx.params:,}  acts: {cx.acts:,}")
    print(f"Keras count_params (with BN moving statistics): {model.count_params():,}")
    return 0
