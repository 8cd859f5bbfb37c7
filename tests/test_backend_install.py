"""keras-instagan in a fresh virtual environment with JAX or PyTorch and no TensorFlow: the package
imports, trains two iterations and translates. Needs PyPI (or a pip cache) for its packages; the
backend gets the version installed here."""

import importlib.metadata
import json
import os
import subprocess
import venv

import pytest
from test_runner_install import installed, pip

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import json
import numpy as np
import keras_instagan

model = keras_instagan.InstaGAN(ngf=4, ndf=4, n_blocks=1, ins_max=2, ins_per=1, pool_size=2, seed=0)
model.build((((None, 32, 32, 3), (None, 32, 32, 2)),) * 2)
model.compile(run_eagerly=True)
rng = np.random.default_rng(0)
image = rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
masks = -np.ones((1, 32, 32, 2), "float32")
masks[0, 4:16, 4:20, 0] = masks[0, 18:28, 10:30, 1] = 1.0
for _ in range(2):
    logs = model.train_on_batch(x=((image, masks), (image, masks)), return_dict=True)
fake, fake_masks = model.translate(image, masks)
import keras, sys
print(json.dumps({"backend": keras.backend.backend(), "steps": int(model.g_optimizer.iterations),
                  "finite": bool(np.isfinite(fake).all() and all(np.isfinite(v) for v in logs.values())),
                  "shapes": [list(fake.shape), list(fake_masks.shape)],
                  "tensorflow_loaded": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_trains_and_translates_in_an_environment_without_tensorflow(tmp_path, backend):
    pytest.importorskip(backend)
    version = importlib.metadata.version(backend).split("+")[0]
    environment = str(tmp_path / "venv")
    venv.create(environment, with_pip=True)
    pip(environment, f"{backend}=={version}")
    pip(environment, "-e", os.path.join(ROOT, "runner"), "-e", ROOT)
    packages = installed(environment)
    assert backend in packages and "keras-instagan" in packages
    assert packages.isdisjoint({"tensorflow", "tensorflow-cpu", "tf-keras"})

    result = subprocess.run(
        [os.path.join(environment, "bin", "python"), "-c", SCRIPT],
        env={**os.environ, "KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"},
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary == {
        "backend": backend,
        "steps": 4,  # two iterations of two sequential steps
        "finite": True,
        "shapes": [[1, 32, 32, 3], [1, 32, 32, 2]],
        "tensorflow_loaded": False,
    }
