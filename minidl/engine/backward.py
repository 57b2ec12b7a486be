"""The backward pass: reverse-mode differentiation over a topologically sorted graph.

1. Collect every Function reachable from the output, in topological order
   (an iterative depth-first search, so deep graphs do not hit Python's
   recursion limit).
2. Seed the output's gradient (1 for a scalar) and visit the functions from
   the output back to the leaves. Each function turns the gradients of its
   outputs into gradients of its inputs; a tensor used twice receives the
   *sum* of its gradients.
3. Leaves that require gradients accumulate into ``.grad``; intermediate
   gradients are dropped as soon as they have been used. Unless
   ``retain_graph`` is set, each function lets go of its inputs and saved
   arrays afterwards, so memory is freed as the pass goes.
4. Callbacks queued during the pass or before it (:func:`queue_callback`) run once
   every gradient is in place: DistributedDataParallel averages the gradients
   over the ranks there (PyTorch's ``Variable._execution_engine.queue_callback``).
"""
from __future__ import annotations

import numpy as np


def topological_order(root) -> list:
    """Functions reachable from tensor ``root``, each after all functions that consume its outputs."""
    order, visited = [], set()
    if root.creator is None:
        return order
    stack = [(root.creator, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        for x in fn.inputs:
            if x.creator is not None and id(x.creator) not in visited:
                stack.append((x.creator, False))
    order.reverse()          # post-order reversed: consumers before producers
    return order


_queued_callbacks = []


def queue_callback(callback) -> None:
    """Run ``callback()`` once, at the end of the next backward pass (dropped if that pass fails)."""
    _queued_callbacks.append(callback)


def run_backward(root, grad, retain_graph: bool = False) -> None:
    """Propagate ``grad`` (d out / d root, an array shaped like root) back to the leaves, then run
    the queued callbacks."""
    try:
        _propagate(root, grad, retain_graph)
    except BaseException:
        _queued_callbacks.clear()
        raise
    while _queued_callbacks:
        _queued_callbacks.pop(0)()


def _propagate(root, grad, retain_graph: bool) -> None:
    grads = {id(root): grad}             # gradients of non-leaf tensors, by id
    keep_alive = {id(root): root}
    if root.creator is None:
        _accumulate(root, grad)
        return
    for fn in topological_order(root):
        outputs = [o for o in fn.outputs_alive()]
        gys = []
        for i in range(fn.n_outputs):
            out = outputs[i]
            gys.append(None if out is None else grads.pop(id(out), None))
        if all(g is None for g in gys):
            continue
        if any(g is None for g in gys):     # an output not used in the loss: its gradient is zero
            xp_ref = next(g for g in gys if g is not None)
            gys = [g if g is not None else _zeros_like(outputs[i], xp_ref) for i, g in enumerate(gys)]
        gxs = _checked_gradients(fn, fn.backward(*gys))
        for x, needs, gx in zip(fn.inputs, fn.needs_grad, gxs):
            if not needs or gx is None:
                continue
            if x.creator is None:
                _accumulate(x, gx)
            else:
                key = id(x)
                keep_alive[key] = x
                grads[key] = gx if key not in grads else _as_array(grads[key] + gx)
        if not retain_graph:
            fn.release()


def _checked_gradients(fn, gxs) -> tuple:
    """What ``fn.backward`` returned, as a tuple of arrays (or None), one per input of ``fn``.

    A backward pass that returns too few gradients, a Tensor instead of an array, or an array of
    the wrong shape is a bug in that op: say which op, which input, and what was expected.
    """
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    if len(gxs) != len(fn.inputs):
        raise RuntimeError(f"{fn.name}.backward returned {len(gxs)} gradient(s) for {len(fn.inputs)} input(s); "
                           "return one per input of forward (None for an input that needs none)")
    checked = []
    for index, (x, gx) in enumerate(zip(fn.inputs, gxs)):
        if type(gx) is np.ndarray and gx.shape == x.data.shape:      # the common case, checked at once
            checked.append(gx)
            continue
        if gx is not None:
            from .tensor import Tensor          # here, not at the top: tensor.py imports this module
            gx = _as_array(gx)
            if isinstance(gx, Tensor) or not (hasattr(gx, "shape") and hasattr(gx, "dtype")):
                raise TypeError(f"{fn.name}.backward returned a {type(gx).__name__} as the gradient of input {index}; "
                                "expected a NumPy or CuPy array (use tensor.data inside backward) or None")
            if gx.shape != x.data.shape:
                raise RuntimeError(f"{fn.name}.backward returned a gradient of shape {tuple(gx.shape)} "
                                   f"for input {index}, of shape {tuple(x.data.shape)}")
        checked.append(gx)
    return tuple(checked)


def _accumulate(leaf, g) -> None:
    if not leaf.requires_grad:
        return
    if leaf.grad is None:
        # A copy: the same array may be the gradient of several inputs (x + y hands gz to both)
        # or the caller's own array, and optimizers update .grad-derived buffers in place. In g's
        # own memory order: a channels-last gradient stays channels-last (no transposing copy).
        leaf.grad = g.copy(order="K")
    else:
        leaf.grad = _as_array(leaf.grad + g)


def _zeros_like(tensor, ref):
    from ..backends import get_array_module
    xp = get_array_module(ref)
    return xp.zeros(tensor.shape, dtype=tensor.dtype)


def _as_array(g):
    """NumPy turns 0-d results into scalars; gradients stay arrays (so they can be edited in place)."""
    return np.asarray(g) if isinstance(g, np.generic) else g
