"""Keep freed host memory in the process for JAX on a CPU.

XLA's CPU runtime under JAX allocates the temporary buffer of a program at every execution and frees
it at the end. For the jitted training iteration that buffer is large (945 MB at the reference
configuration of `bench/train_step.py`), and glibc's allocator hands an allocation that large to the
kernel as a fresh mapping and unmaps it when it is freed: every iteration then touches 230,000 new
pages, and the kernel spends about half a second zeroing them (docs/benchmarks.md, "The
temporary buffer of JAX's iteration"). TensorFlow's XLA keeps its buffers in its own allocator and is
not affected; on an accelerator the buffers live in device memory.

`keep_freed_memory()` makes JAX run a CPU program on the thread that calls it (JAX's
`jax_cpu_enable_async_dispatch` off), so that its buffers come from glibc's main heap, and tells
glibc never to map a large allocation of its own and to keep freed memory instead of returning it to
the kernel, so that the next execution reuses the same pages. The process then keeps its peak heap
for its lifetime, which a training process reaches in its first iteration anyway. Both settings only
work before JAX's runtime has started (its first array or `jax.devices()`); `keras_instagan` calls it
when imported with the JAX backend on a machine without a JAX accelerator plugin. It does nothing
where the C library is not glibc.
"""

import ctypes
import ctypes.util
from importlib.util import find_spec

# mallopt parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def _cpu_only(jax):
    """Whether JAX can only use the CPU: its platforms forced to "cpu", or no accelerator plugin
    (CUDA, ROCm or TPU) installed. Decided without starting JAX's runtime."""
    platforms = jax.config.jax_platforms
    if platforms:
        return platforms.split(",") == ["cpu"]
    return find_spec("jax_plugins") is None and find_spec("libtpu") is None


def keep_freed_memory():
    """Make JAX's CPU programs run on the calling thread and glibc keep freed memory for reuse (see
    the module's docstring). Returns whether the settings took effect: False where the C library
    is not glibc, where JAX may use an accelerator, or where JAX's runtime has already started."""
    import jax
    from jax._src import xla_bridge

    if not _cpu_only(jax) or xla_bridge.backends_are_initialized():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    settings = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 2**31 - 1))
    if not all(mallopt(parameter, value) == 1 for parameter, value in settings):
        return False
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True
