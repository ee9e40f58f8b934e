"""The whole table of seed 001 ("我的机器学习支线「模型复杂度」", §3: the ptflops README table of
torchvision and Cadene's pretrainedmodels ports, measured with ptflops' module hooks): all 25 rows,
parameters to 0.01 M and MACs to 0.01 G, from abstract zoo models through jaxcost's theory and
the ptflops convention of the time (``jaxcost.conventions``, "ptflops-modules": module hooks only,
before ptflops 0.7.1 also wrapped ``torch.nn.functional``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import jaxcost
import models
from jaxcost.conventions import count

# model: (input side, params in M, MACs in G) as the seed prints them
TABLE = {
    "alexnet": (224, 61.1, 0.72), "densenet121": (224, 7.98, 2.88), "densenet161": (224, 28.68, 7.82),
    "densenet169": (224, 14.15, 3.42), "densenet201": (224, 20.01, 4.37), "dpn107": (224, 86.92, 18.42),
    "dpn131": (224, 79.25, 16.13), "dpn68": (224, 12.61, 2.36), "dpn68b": (224, 12.61, 2.36),
    "dpn92": (224, 37.67, 6.56), "dpn98": (224, 61.57, 11.76), "inception_v3": (299, 27.16, 5.73),
    "inception_v4": (299, 42.68, 12.31), "resnet101": (224, 44.55, 7.85), "resnet152": (224, 60.19, 11.58),
    "resnet18": (224, 11.69, 1.82), "resnet34": (224, 21.8, 3.68), "resnet50": (224, 25.56, 4.12),
    "se_resnet101": (224, 49.33, 7.63), "se_resnet152": (224, 66.82, 11.37), "se_resnet50": (224, 28.09, 3.9),
    "vgg11": (224, 132.86, 7.63), "vgg13": (224, 133.05, 11.34), "vgg16": (224, 138.36, 15.5),
    "vgg19": (224, 143.67, 19.67),
}
# torchvision's Inception3 applies ReLU and its pooling as functions (F.relu in BasicConv2d,
# F.max_pool2d / F.avg_pool2d in forward), which module hooks never see
FUNCTIONAL = {"inception_v3": ("relu", "max_pool", "avg_pool")}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_seed001_row(name):
    side, params_m, macs_g = TABLE[name]
    model = models.build_abstract(name)
    theory = jaxcost.analyze_theory(model, jax.ShapeDtypeStruct((1, side, side, 3), jnp.float32))
    params = sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
    c = count(theory, "ptflops-modules")
    macs = c.total - sum(c.counted.get(kind, 0) for kind in FUNCTIONAL.get(name, ()))
    assert (round(params / 1e6, 2), round(macs / 1e9, 2)) == (params_m, macs_g)
