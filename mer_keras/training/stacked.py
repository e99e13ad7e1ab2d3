"""Many folds in one compiled program: the model built once, every fold's weights in its own slot.

:class:`StackedTrainer` builds the model, its losses and its optimizer ONCE, and keeps ``width``
independent copies of the training state (trainable weights, non-trainable state such as
BatchNorm statistics and the dropout seed, and the optimizer's slots), one per *slot*. One train
step is one XLA-compiled call that gives every slot its own batch, its own forward and backward
pass, and its own optimizer update, through the model's stateless API
(``model.stateless_call`` / ``optimizer.stateless_apply``), so no slot can see another's samples or
gradients. ``width=1`` is the compile-once engine; ``width>1`` the fold-parallel one. The two run
the same code.

Slots are independent subgraphs of one program, each running the model's own layers, so the
engine needs no second implementation of any model; what the slots share is the per-step Python
and dispatch overhead, paid once for all of them. A vectorized step (stacked kernels, grouped
convolutions) was not tried. Speed: ``benchmarks/bench_training.py``.

Equivalence to Keras' ``fit``, which :mod:`mer_keras.training.fit_engine` uses per fold:

* Each loss is reduced as Keras' ``"sum_over_batch_size"`` does, ``sum(l_i * w_i) / n`` over the
  ``n`` real samples of the batch; padding has weight 0 and is not counted in ``n``.
* The epoch's ``loss`` is the batch losses' mean weighted by batch size, as Keras' loss tracker.
* The optimizer update is Keras' own SGD / Adam (``keras/src/optimizers/sgd.py``, ``adam.py``,
  decoupled weight decay applied first, as ``BaseOptimizer.apply``) written as a pure function,
  since ``Optimizer.stateless_apply`` is not available on the TensorFlow backend; a test checks it
  against ``model.fit`` step by step.
* A slot without a batch at a step (a fold with fewer steps per epoch, one that has stopped, or a
  slot a short last group leaves empty) keeps its weights, its optimizer state and its step counter
  unchanged, and costs no forward or backward pass (``tf.cond``).
"""

from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np

from mer_keras.training.compiling import make_losses, make_optimizer, optimizer_moments
from mer_keras.training.config import TrainConfig, derived_seed


class NotStackable(ValueError):
    """The model has state that :func:`initial_values` cannot draw again from a fold's seed."""


def _initializer_of(layer, variable):
    """The initializer a layer built ``variable`` with, from the layer's config."""
    config = layer.get_config()
    entry = config.get(f"{variable.name}_initializer")
    if entry is None:
        raise NotStackable(f"layer {layer.name!r} ({type(layer).__name__}) has a variable "
                           f"{variable.name!r} with no '{variable.name}_initializer' in its "
                           "config, so a fold cannot redraw it from its seed")
    return entry


def initial_values(model: keras.Model, seed: int) -> tuple[list, list]:
    """Fresh initial values of every model variable, drawn from ``seed``.

    Each layer's own initializer (from its config: ``kernel_initializer`` for ``kernel``, ...) is
    called again with a seed derived from ``seed`` and the variable's position, and each dropout
    seed generator restarts from a derived seed. The values depend on ``seed`` only, never on what
    the model trained before.

    Returns:
        ``(trainable, non_trainable)``: NumPy arrays in the order of ``model.trainable_variables``
        and ``model.non_trainable_variables``.

    Raises:
        NotStackable: a variable has no initializer the layer's config names.
    """
    owners = {}
    for layer in model._flatten_layers(include_self=False):
        for variable in list(layer._trainable_variables) + list(layer._non_trainable_variables):
            owners[id(variable)] = ("weight", layer, variable)
        for generator in getattr(layer, "_seed_generators", []):
            owners[id(generator.state)] = ("seed", layer, generator.state)

    def draw(variables, offset):
        values = []
        for position, variable in enumerate(variables):
            if id(variable) not in owners:
                raise NotStackable(f"variable {variable.path!r} belongs to no layer of the model")
            kind, layer, _ = owners[id(variable)]
            derived = derived_seed(int(seed), offset + position)
            if kind == "seed":
                values.append(np.array([derived, 0], dtype=variable.dtype))
                continue
            entry = dict(_initializer_of(layer, variable))
            entry["config"] = dict(entry.get("config") or {})
            if "seed" in entry["config"]:
                entry["config"]["seed"] = derived
            initializer = keras.initializers.deserialize(entry)
            values.append(keras.ops.convert_to_numpy(
                initializer(tuple(variable.shape), dtype=variable.dtype)))
        return values

    trainable = draw(model.trainable_variables, 0)
    return trainable, draw(model.non_trainable_variables, len(trainable))


class StackedTrainer:
    """One model, one optimizer, ``width`` slots of training state, one compiled step for all.

    Args:
        config: the run's config (model, losses, optimizer; ``learning_rate`` is set per step).
        input_shape: ``(H, W, C)`` of one sample.
        num_classes: the protocol's number of classes.
        width: slots, i.e. folds trained at once.
        jit_compile: compile the step with XLA.

    The training table (every sample a slot may train on, with its label) is set once with
    :meth:`set_table`; a step then takes per-slot sample indices into it.
    """

    def __init__(self, config: TrainConfig, input_shape: Sequence[int], num_classes: int, *,
                 width: int = 1, jit_compile: bool = True):
        import tensorflow as tf

        from mer_keras.models import get_builder

        self.tf = tf
        self.config, self.width = config, int(width)
        self.model = get_builder(config.model)(input_shape=tuple(input_shape),
                                               num_classes=num_classes, **config.model_options)
        self.output_names = list(config.losses)
        self.losses = make_losses(config)
        self.loss_weights = {name: float(config.loss_weights.get(name, 1.0))
                             for name in self.output_names}
        # the Keras optimizer is only read for its hyperparameters (see _update)
        self.optimizer = make_optimizer(config, learning_rate=config.learning_rate)
        self._moments = optimizer_moments(config)
        # fail now, not mid-run, where a variable cannot be redrawn
        initial_values(self.model, 0)

        def slots(variables):
            return [[tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False) for v in variables]
                    for _ in range(self.width)]

        self.trainable = slots(self.model.trainable_variables)
        self.non_trainable = slots(self.model.non_trainable_variables)
        #: per slot: the step counter, then ``_moments`` slot arrays per trainable variable
        self.optimizer_state = [
            [tf.Variable(tf.zeros((), tf.float32), trainable=False)]
            + [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False)
               for v in self.model.trainable_variables for _ in range(self._moments)]
            for _ in range(self.width)]
        self._table_x = self._table_y = None
        self._jit_compile = jit_compile
        self._programs()
        from mer_keras.training.probes import make_probe
        #: the model's per-epoch probe (:mod:`~mer_keras.training.probes`), or None
        self.probe = make_probe(config.model, self.model)

    def _programs(self) -> None:
        """(Re)create the compiled programs; they capture the table variables they read."""
        tf, jit = self.tf, self._jit_compile
        # with jit_compile False the forward and backward passes run as a TensorFlow graph
        # (oneDNN's convolutions beat XLA's on CPU); the optimizer update, all element-wise, is
        # fused by XLA either way
        self._apply = tf.function(self._apply_updates, jit_compile=True)
        self._train_step = tf.function(self._step, jit_compile=jit, reduce_retracing=True)
        self._forward = tf.function(self._logits, jit_compile=jit, reduce_retracing=True)
        self._validation = tf.function(self._eval_loss, jit_compile=jit, reduce_retracing=True)

    # -- state -------------------------------------------------------------------------------------

    def set_table(self, x: np.ndarray, y: np.ndarray) -> None:
        """The samples (and integer labels) every slot's indices point into."""
        tf = self.tf
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.ascontiguousarray(y, dtype=np.int32)
        if self._table_x is None or tuple(self._table_x.shape) != x.shape:
            first = self._table_x is None
            self._table_x = tf.Variable(x, trainable=False)
            self._table_y = tf.Variable(y, trainable=False)
            if not first:  # the traced programs hold the old variables
                self._programs()
        else:
            self._table_x.assign(x)
            self._table_y.assign(y)

    def reset(self, slot: int, seed: int) -> None:
        """Give ``slot`` fresh weights drawn from ``seed``, and a fresh optimizer."""
        trainable, non_trainable = initial_values(self.model, seed)
        self.set_state(slot, trainable, non_trainable)

    def set_state(self, slot: int, trainable: Sequence, non_trainable: Optional[Sequence] = None
                  ) -> None:
        """Set ``slot``'s weights (and non-trainable state) and zero its optimizer."""
        for variable, value in zip(self.trainable[slot], trainable):
            variable.assign(value)
        if non_trainable is not None:
            for variable, value in zip(self.non_trainable[slot], non_trainable):
                variable.assign(value)
        for variable in self.optimizer_state[slot]:
            variable.assign(np.zeros(variable.shape, variable.dtype.as_numpy_dtype))

    def weights(self, slot: int) -> list[np.ndarray]:
        """``slot``'s trainable weights, in ``model.trainable_variables`` order."""
        return [v.numpy() for v in self.trainable[slot]]

    def state(self, slot: int) -> tuple[list, list]:
        return self.weights(slot), [v.numpy() for v in self.non_trainable[slot]]

    def measure(self, slot: int, rows: np.ndarray) -> dict[str, float]:
        """:attr:`probe`'s numbers for ``slot`` on rows of the table (``{}`` without a probe).

        The slot's weights are copied into the model's own variables, which the compiled
        programs never read (they run ``stateless_call`` on the slots)."""
        if self.probe is None:
            return {}
        for variable, value in zip(self.model.trainable_variables, self.trainable[slot]):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, self.non_trainable[slot]):
            variable.assign(value)
        return self.probe.measure(self.tf.gather(self._table_x, rows).numpy())

    # -- compiled programs -------------------------------------------------------------------------

    def _fold_loss(self, outputs, y, w, count):
        ops = keras.ops
        total, parts = 0.0, []
        for name in self.output_names:
            per_sample = self.losses[name].call(y, outputs[name])
            value = ops.sum(per_sample * w) / count
            parts.append(value)
            total = total + self.loss_weights[name] * value
        return total, parts

    def _slot_pass(self, slot, index, weight, mask):
        """One slot's forward and backward pass: ``(losses, gradients)``; updates its state."""
        tf = self.tf
        x = tf.gather(self._table_x, index)
        y = tf.gather(self._table_y, index)
        count = tf.maximum(tf.reduce_sum(mask), 1.0)
        trainable = [v.read_value() for v in self.trainable[slot]]
        non_trainable = [v.read_value() for v in self.non_trainable[slot]]
        with tf.GradientTape() as tape:
            tape.watch(trainable)
            outputs, new_non_trainable, extra = self.model.stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True)
            loss, parts = self._fold_loss(outputs, y, weight, count)
            if extra:
                loss = loss + tf.add_n(extra)
        grads = tape.gradient(loss, trainable)
        for variable, value in zip(self.non_trainable[slot], new_non_trainable):
            variable.assign(value)
        return tf.stack([loss] + parts), grads

    def _idle_pass(self, slot):
        """A slot without a batch this step: nothing computed, its state untouched."""
        tf = self.tf
        return (tf.zeros((1 + len(self.output_names),)),
                [tf.zeros_like(v) for v in self.trainable[slot]])

    def _step(self, index, weight, mask, learning_rate):
        tf = self.tf
        results, all_grads, actives = [], [], []
        for slot in range(self.width):
            active = tf.reduce_sum(mask[slot]) > 0
            losses, grads = tf.cond(
                active, lambda slot=slot: self._slot_pass(slot, index[slot], weight[slot],
                                                          mask[slot]),
                lambda slot=slot: self._idle_pass(slot))
            results.append(losses)
            all_grads.append(grads)
            actives.append(active)
        self._apply(all_grads, learning_rate, tf.stack(actives))
        return tf.stack(results)

    def _apply_updates(self, all_grads, learning_rate, actives):
        """Every slot's optimizer step (fused by XLA: one pass over each weight and its slots)."""
        tf = self.tf
        for slot in range(self.width):
            trainable = [v.read_value() for v in self.trainable[slot]]
            state = [v.read_value() for v in self.optimizer_state[slot]]
            new_trainable, new_state = self._update(state, all_grads[slot], trainable,
                                                    learning_rate[slot])
            for variables, new, old in ((self.trainable[slot], new_trainable, trainable),
                                        (self.optimizer_state[slot], new_state, state)):
                for variable, value, before in zip(variables, new, old):
                    variable.assign(tf.where(actives[slot], value, before))

    def _update(self, state, grads, variables, learning_rate):
        """Keras' SGD / Adam step as a pure function: ``(new variables, new state)``."""
        ops = keras.ops
        optimizer, lr = self.optimizer, learning_rate
        step = state[0] + 1.0
        if optimizer.weight_decay:
            variables = [v - v * optimizer.weight_decay * lr for v in variables]
        new_variables, new_state = [], [step]
        for position, (variable, gradient) in enumerate(zip(variables, grads)):
            slots = state[1 + position * self._moments: 1 + (position + 1) * self._moments]
            if self._moments == 2:  # Adam (adam.py update_step)
                m, v = slots
                alpha = lr * ops.sqrt(1 - ops.power(optimizer.beta_2, step)) / (
                    1 - ops.power(optimizer.beta_1, step))
                m = m + (gradient - m) * (1 - optimizer.beta_1)
                v = v + (ops.square(gradient) - v) * (1 - optimizer.beta_2)
                variable = variable - (m * alpha) / (ops.sqrt(v) + optimizer.epsilon)
                new_state += [m, v]
            elif self._moments == 1:  # SGD with momentum (sgd.py update_step)
                m = -gradient * lr + slots[0] * optimizer.momentum
                variable = variable + (-gradient * lr + m * optimizer.momentum
                                       if optimizer.nesterov else m)
                new_state.append(m)
            else:
                variable = variable - gradient * lr
            new_variables.append(variable)
        return new_variables, new_state

    def _infer(self, slot, x):
        """``slot``'s outputs on ``x`` in inference mode (its state untouched)."""
        outputs, _ = self.model.stateless_call(
            [v.read_value() for v in self.trainable[slot]],
            [v.read_value() for v in self.non_trainable[slot]], x, training=False)
        return outputs

    def _logits(self, x):
        return self.tf.stack([self._infer(slot, x[slot])["logits"] for slot in range(self.width)])

    def _eval_loss(self, x, y, weight, mask):
        tf = self.tf
        return tf.stack([
            self._fold_loss(self._infer(slot, x[slot]), y[slot], weight[slot],
                            tf.maximum(tf.reduce_sum(mask[slot]), 1.0))[0]
            for slot in range(self.width)])

    # -- calls -------------------------------------------------------------------------------------

    def train_step(self, index: np.ndarray, weight: np.ndarray, mask: np.ndarray,
                   learning_rate: np.ndarray) -> np.ndarray:
        """One step for every slot.

        Args:
            index: ``width x B`` int indices into the table (anything where ``mask`` is 0).
            weight: ``width x B`` sample weights (0 where ``mask`` is 0).
            mask: ``width x B``, 1 for a real sample, 0 for padding; an all-zero row leaves its
                slot untouched.
            learning_rate: ``width`` learning rates.

        Returns:
            ``width x (1 + outputs)``: each slot's total loss and its per-output losses.
        """
        tf = self.tf
        return self._train_step(tf.constant(index, tf.int32), tf.constant(weight, tf.float32),
                                tf.constant(mask, tf.float32),
                                tf.constant(learning_rate, tf.float32)).numpy()

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``width x T x ...`` inputs -> ``width x T x K`` logits (inference mode)."""
        return self._forward(self.tf.constant(x, self.tf.float32)).numpy()

    def validation_loss(self, x, y, weight, mask) -> np.ndarray:
        """Each slot's loss on its own ``width x T`` padded validation batch."""
        tf = self.tf
        return self._validation(tf.constant(x, tf.float32), tf.constant(y, tf.int32),
                                tf.constant(weight, tf.float32), tf.constant(mask, tf.float32)
                                ).numpy()


def pad_rows(rows: Sequence[np.ndarray], width: int, fill=0) -> np.ndarray:
    """Stack 1-D arrays of unequal length into ``width x max_len``, padded with ``fill``."""
    length = max([len(r) for r in rows] + [1])
    out = np.full((width, length), fill, dtype=np.asarray(rows[0]).dtype if rows else np.int64)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out

