"""Vision Transformer ViT-B/16 (Dosovitskiy et al., "An Image is Worth 16x16 Words",
arXiv 2010.11929), laid out as torchvision's ``vit_b_16`` (class token, learned
position embedding, pre-norm encoder, linear head)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from models._registry import TORCHVISION, Reference, register


class MultiHeadAttention(nnx.Module):
    """Multi-head self-attention with a fused QKV projection (the matmuls are einsums)."""

    def __init__(self, dim, heads, *, rngs, dtype=None):
        self.heads = heads
        self.qkv = nnx.Linear(dim, 3 * dim, dtype=dtype, rngs=rngs)
        self.proj = nnx.Linear(dim, dim, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        b, n, d = x.shape
        q, k, v = jnp.split(self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads), 3, axis=2)
        q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]
        a = jnp.einsum("bqhd,bkhd->bhqk", q, k) * (d // self.heads) ** -0.5
        y = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(a, axis=-1), v)
        return self.proj(y.reshape(b, n, d))


class EncoderBlock(nnx.Module):
    """Pre-norm block: x + MHA(LN(x)); x + MLP(LN(x)) with GELU."""

    def __init__(self, dim, heads, mlp_dim, *, rngs, dtype=None):
        self.ln1 = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
        self.attn = MultiHeadAttention(dim, heads, rngs=rngs, dtype=dtype)
        self.ln2 = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
        self.fc1 = nnx.Linear(dim, mlp_dim, dtype=dtype, rngs=rngs)
        self.fc2 = nnx.Linear(mlp_dim, dim, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(jax.nn.gelu(self.fc1(self.ln2(x)), approximate=False))


class VisionTransformer(nnx.Module):
    """Patchify conv, class token, position embedding, encoder blocks, LN, head on the class token."""

    def __init__(self, image_size=224, patch=16, dim=768, depth=12, heads=12, mlp_dim=3072,
                 num_classes=1000, *, rngs, dtype=None):
        self.patch_embed = nnx.Conv(3, dim, (patch, patch), strides=patch, padding="VALID", dtype=dtype,
                                    rngs=rngs)
        n = (image_size // patch) ** 2 + 1
        self.cls_token = nnx.Param(jnp.zeros((1, 1, dim)))
        self.pos_embed = nnx.Param(jax.random.normal(rngs.params(), (1, n, dim)) * 0.02)
        self.blocks = nnx.List([EncoderBlock(dim, heads, mlp_dim, rngs=rngs, dtype=dtype)
                                for _ in range(depth)])
        self.ln = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
        self.head = nnx.Linear(dim, num_classes, dtype=dtype, rngs=rngs)

    def __call__(self, x):
        x = self.patch_embed(x)
        b, h, w, d = x.shape
        x = x.reshape(b, h * w, d)
        x = jnp.concatenate([jnp.broadcast_to(self.cls_token[...], (b, 1, d)), x], axis=1)
        x = x + self.pos_embed[...]
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.ln(x)[:, 0])


@register("vit_b_16", input_shape=(224, 224, 3),
          reference=Reference(86_567_656, 17.564e9,
                              TORCHVISION, tolerance=0.005,
                              note="MACs include the attention matmuls QK^T and AV"))
def vit_b_16(*, rngs, image_size=224, num_classes=1000, dtype=None):
    """ViT-B/16: 12 layers, width 768, 12 heads, MLP 3072."""
    return VisionTransformer(image_size, 16, 768, 12, 12, 3072, num_classes, rngs=rngs, dtype=dtype)
