"""What the command line analyses: a zoo model name or ``package.module:object``, with its
abstract inputs; the checks that turn bad arguments into one-line errors before any work."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

try:
    from flax import linen
except ImportError:  # pragma: no cover
    linen = None


class UsageError(Exception):
    """A bad command-line argument: one line on stderr, exit code 2."""


@dataclasses.dataclass(frozen=True)
class Resolved:
    """What to run: ``fn(*inputs)``, shown as ``name``; ``batch`` is the leading input
    dimension; ``zoo`` says the CLI built the model itself (so it owns its parameter dtype)."""

    fn: object
    inputs: tuple
    name: str
    batch: int
    zoo: bool


def parse_shape(text: str) -> tuple[int, ...]:
    """``224,224,3`` (or ``224x224x3``) -> ``(224, 224, 3)``."""
    try:
        dims = tuple(int(d) for d in text.replace("x", ",").split(",") if d.strip())
    except ValueError:
        raise UsageError(f"--input-shape must be integers separated by commas, got {text!r}") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape must be positive integers, got {text!r}")
    return dims


def parse_dtype(text: str, flag: str = "--dtype"):
    try:
        return jnp.dtype(text)
    except TypeError:
        raise UsageError(f"unknown {flag} {text!r} (try float32, bfloat16, float16)") from None


def check_output(path: str | None, flag: str) -> None:
    """Fail before the analysis, not after it, when ``path`` cannot be written."""
    if path is None or path == "-":
        return
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name")
    if not p.parent.is_dir():
        raise UsageError(f"{flag} {path}: folder {p.parent} does not exist")
    if not os.access(p.parent, os.W_OK):
        raise UsageError(f"{flag} {path}: folder {p.parent} is not writable")


def check_backend(backend: str | None) -> None:
    from jaxcost.perf import available_backends

    if backend is not None and not available_backends((backend,)):
        raise UsageError(f"backend {backend!r} is not available (jax sees: {jax.default_backend()})")


def _import(spec: str):
    """``package.module:attr.attr`` -> the object, importing as ``python -m`` would: the working
    directory comes first on ``sys.path`` (a console script puts its own folder there instead)."""
    mod_name, _, attr = spec.partition(":")
    if not mod_name or not attr:
        raise UsageError(f"give package.module:object, got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        if e.name and f"{mod_name}.".startswith(f"{e.name}."):  # the target itself, not its imports
            raise UsageError(f"cannot load {spec!r}: no module named {e.name!r} in {cwd} or the "
                             "installed packages") from None
        raise UsageError(f"cannot load {spec!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - whatever the user's module raised while importing
        raise UsageError(f"cannot load {spec!r}: importing {mod_name} raised "
                         f"{type(e).__name__}: {e}") from None
    try:
        return functools.reduce(getattr, attr.split("."), module)
    except AttributeError:
        raise UsageError(f"cannot load {spec!r}: {mod_name} has no {attr!r}") from None


def _module_class(obj) -> str | None:
    if not inspect.isclass(obj):
        return None
    if issubclass(obj, nnx.Module):
        return "nnx"
    if linen is not None and issubclass(obj, linen.Module):
        return "linen"
    return None


def _build(cls, kind: str, spec: str):
    """A Module class whose constructor needs nothing (an nnx one: at most ``rngs``) is built
    abstractly, as the zoo's models are; any other class is a usage error."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    required = [p.name for p in params if p.default is p.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if kind == "linen" and not required:
        return cls()
    if kind == "nnx" and set(required) <= {"rngs"}:
        return nnx.eval_shape(lambda: cls(rngs=nnx.Rngs(0)) if required else cls())
    mod_name = spec.partition(":")[0]
    raise UsageError(f"{cls.__name__} is a class whose constructor needs {', '.join(required)}; give an "
                     f"instance instead: model = {cls.__name__}(...) in {mod_name}, then {mod_name}:model")


def resolve(target: str, *, batch: int | None, input_shape: str | None, dtype: str) -> Resolved:
    """A zoo model name (input shape without the batch; ``batch`` defaults to 1) or
    ``package.module:object`` (a function, Module instance or buildable Module class; the
    input shape includes the batch, so ``batch`` must not be given)."""
    dt = parse_dtype(dtype)
    if ":" in target:
        obj = _import(target)
        if input_shape is None:
            raise UsageError(f"{target} needs --input-shape (with the batch dimension)")
        if batch is not None:
            raise UsageError(f"--batch is for zoo models; for {target} the batch is the first "
                             "dimension of --input-shape")
        shape = parse_shape(input_shape)
        kind = _module_class(obj)
        if kind:
            obj = _build(obj, kind, target)
        return Resolved(obj, (jax.ShapeDtypeStruct(shape, dt),), target, shape[0], zoo=False)

    import models

    if target not in models.names():
        raise UsageError(f"unknown model {target!r}; run 'jaxcost models' for the list, "
                         "or give package.module:object")
    expected = models.input_shape(target)
    shape = parse_shape(input_shape) if input_shape else expected
    if len(shape) != len(expected):
        hint = ": drop the batch dimension (use --batch)" if len(shape) == len(expected) + 1 else ""
        raise UsageError(f"{target} takes inputs of rank {len(expected)} without the batch, like "
                         f"{','.join(map(str, expected))}; --input-shape {input_shape} has rank "
                         f"{len(shape)}{hint}")
    batch = 1 if batch is None else batch
    if batch <= 0:
        raise UsageError(f"--batch must be positive, got {batch}")
    return Resolved(models.build_abstract(target), (jax.ShapeDtypeStruct((batch, *shape), dt),),
                    target, batch, zoo=True)


def parse_options(items) -> dict:
    """``KEY=VALUE`` XLA options from repeated ``--xla-option`` arguments."""
    options = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--xla-option must be KEY=VALUE, got {item!r}")
        options[key] = value
    return options


def parse_batches(text: str) -> list[int]:
    """``--batch 1,8,32``."""
    try:
        out = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise UsageError(f"--batch must be integers separated by commas, got {text!r}") from None
    if not out or min(out) <= 0:
        raise UsageError(f"--batch must be positive, got {text!r}")
    return out


def add_train_arguments(parser) -> None:
    """``--train``, ``--optimizer``, ``--remat`` (``analyze`` and ``bench``)."""
    parser.add_argument("--train", action="store_true",
                        help="one training step (cross-entropy, optimizer update) instead of the forward pass")
    parser.add_argument("--optimizer", default=None, help="with --train: sgd (default), momentum, adam, adamw, lion")
    parser.add_argument("--remat", action="store_true",
                        help="with --train: recompute every repeated block in the backward pass (nnx.remat)")


def train_options(args, resolved: Resolved):
    """The :class:`jaxcost.TrainStep` the ``--train`` options ask for (None without ``--train``)."""
    if not args.train:
        if args.optimizer is not None or args.remat:
            raise UsageError("--optimizer and --remat need --train")
        return None
    from jaxcost.train.step import OPTIMIZERS, train_step

    if args.optimizer is not None and args.optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer {args.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}")
    if len(resolved.inputs) != 1:
        raise UsageError(f"--train needs a model with one input; {resolved.name} takes {len(resolved.inputs)}")
    from flax import linen, nnx

    if not isinstance(resolved.fn, (nnx.Module, linen.Module)):
        raise UsageError(f"--train builds the step of a model; {resolved.name} is a function: write its training "
                         "step and analyze that")
    return train_step(resolved.fn, resolved.inputs[0], optimizer=args.optimizer, remat=args.remat)


def parse_mesh(text: str) -> dict[str, int]:
    """``data=2,model=4`` -> ``{"data": 2, "model": 4}``."""
    out: dict[str, int] = {}
    for part in text.split(","):
        name, eq, size = part.partition("=")
        if not eq or not name.strip().isidentifier() or not size.strip().isdigit() or int(size) < 1:
            raise UsageError(f"--mesh must be axis=size pairs separated by commas (data=2,model=4), got {text!r}")
        out[name.strip()] = int(size)
    return out


def mesh_options(text: str, resolved: Resolved, train: bool = False) -> dict:
    """``analyze`` options for ``--mesh``: the first input's batch over the first axis, every
    other input and the parameters replicated (data parallelism); of a training step
    ``(model, optimizer, x, labels)``, the batch of ``x`` and of the labels."""
    from jax.sharding import PartitionSpec

    mesh = parse_mesh(text)
    axis, size = next(iter(mesh.items()))
    if resolved.batch % size:
        raise UsageError(f"--mesh: the batch ({resolved.batch}) must be a multiple of the '{axis}' axis ({size})")
    specs = (PartitionSpec(axis), *([None] * (len(resolved.inputs) - 1)))
    if train:
        specs = (None, None, PartitionSpec(axis), PartitionSpec(axis))
    return {"mesh": mesh, "in_specs": specs}
