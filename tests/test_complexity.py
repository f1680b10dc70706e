import pytest

from keras_regnet import complexity, zoo
from keras_regnet.specs import AnyNetSpec, StageSpec

# pycls MODEL_ZOO.md (ImageNet, 224x224): flops (B), params (M), acts (M).
PUBLISHED = {
    "RegNetX002": (0.2, 2.7, 2.2),
    "RegNetX004": (0.4, 5.2, 3.1),
    "RegNetX006": (0.6, 6.2, 4.0),
    "RegNetX008": (0.8, 7.3, 5.1),
    "RegNetX016": (1.6, 9.2, 7.9),
    "RegNetX032": (3.2, 15.3, 11.4),
    "RegNetX040": (4.0, 22.1, 12.2),
    "RegNetX064": (6.5, 26.2, 16.4),
    "RegNetX080": (8.0, 39.6, 14.1),
    "RegNetX120": (12.1, 46.1, 21.4),
    "RegNetX160": (15.9, 54.3, 25.5),
    "RegNetX320": (31.7, 107.8, 36.3),
    "RegNetY002": (0.2, 3.2, 2.2),
    "RegNetY004": (0.4, 4.3, 3.9),
    "RegNetY006": (0.6, 6.1, 4.3),
    "RegNetY008": (0.8, 6.3, 5.2),
    "RegNetY016": (1.6, 11.2, 8.0),
    "RegNetY032": (3.2, 19.4, 11.3),
    "RegNetY040": (4.0, 20.6, 12.3),
    "RegNetY064": (6.4, 30.6, 16.4),
    "RegNetY080": (8.0, 39.2, 18.0),
    "RegNetY120": (12.1, 51.8, 21.4),
    "RegNetY160": (15.9, 83.6, 23.0),
    "RegNetY320": (32.3, 145.0, 30.3),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_reproduces_pycls_published_figures(name):
    cx = complexity.count(zoo.get_spec(name))
    flops, params, acts = PUBLISHED[name]
    assert (round(cx.flops / 1e9, 1), round(cx.params / 1e6, 1), round(cx.acts / 1e6, 1)) == (flops, params, acts)


def test_exact_counts_by_hand():
    # stem: 3x3 conv 1->4 at 4x4 out (8x8 input, stride 2) + BN
    # one X block 4->8, stride 2 -> 2x2, bottleneck 8, group width 4 (2 groups), projection
    spec = AnyNetSpec(4, [StageSpec(1, 8, 4)])
    cx = complexity.count(spec, (8, 8, 1), classes=3)
    stem = (9 * 1 * 4 * 16, 9 * 4 + 8, 4 * 16)
    proj = (4 * 8 * 4, 4 * 8 + 16, 8 * 4)
    a = (4 * 8 * 16, 4 * 8 + 16, 8 * 16)
    b = (9 * 8 * 8 * 4 // 2, 9 * 8 * 8 // 2 + 16, 8 * 4)
    c = (8 * 8 * 4, 8 * 8 + 16, 8 * 4)
    head = (8 * 3 + 3, 8 * 3 + 3, 3)
    expected = [sum(t[i] for t in (stem, proj, a, b, c, head)) for i in range(3)]
    assert [cx.flops, cx.params, cx.acts] == expected


def test_se_counts_follow_pycls():
    x = AnyNetSpec(8, [StageSpec(1, 16, 8)])
    y = AnyNetSpec(8, [StageSpec(1, 16, 8, se_ratio=0.25)], block="y")
    dx, dy = complexity.count(x, (16, 16, 3)), complexity.count(y, (16, 16, 3))
    w_b, w_se = 16, 2  # SE width 2 = round(0.25 x the block *input* width 8)
    assert dy.flops - dx.flops == 2 * w_b * w_se + w_se + w_b
    assert dy.params - dx.params == 2 * w_b * w_se + w_se + w_b
    assert dy.acts - dx.acts == w_se + w_b


def test_depth_repeats_are_counted_per_block():
    one = complexity.count(AnyNetSpec(8, [StageSpec(1, 16, 8)]), (32, 32, 3), 0)
    two = complexity.count(AnyNetSpec(8, [StageSpec(2, 16, 8)]), (32, 32, 3), 0)
    three = complexity.count(AnyNetSpec(8, [StageSpec(3, 16, 8)]), (32, 32, 3), 0)
    assert three.flops - two.flops == two.flops - one.flops > 0
    assert three.params - two.params == two.params - one.params > 0


def test_other_blocks_are_counted():
    for block in ("vgg", "inception", "resnet_bottleneck"):
        spec = AnyNetSpec(16, [(1, 32, 8, 1, 1), (2, 64, 8, 1, 2)], block=block, stem_stride=1)
        cx = complexity.count(spec, (32, 32, 3), 10)
        assert cx.flops > 0 and cx.params > 0 and cx.acts > 0
    vgg = complexity.count(AnyNetSpec(4, [(1, 8, 8, 1, 1)], block="vgg", stem_stride=1), (4, 4, 1), 0)
    assert vgg.params == (9 * 4 + 8) + (9 * 4 * 8 + 16)


def test_bad_input():
    spec = zoo.get_spec("RegNetX002")
    with pytest.raises(TypeError, match="spec"):
        complexity.count("RegNetX002")
    with pytest.raises(ValueError, match="input_shape"):
        complexity.count(spec, (224, 224))
    with pytest.raises(ValueError, match="classes"):
        complexity.count(spec, classes=-1)


def test_every_block_builder_has_a_counter():
    from keras_regnet import blocks, specs

    assert set(complexity.BLOCK_COUNTERS) == set(blocks.BLOCK_BUILDERS) == set(specs.BLOCKS)
