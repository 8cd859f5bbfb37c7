"""`pytest --nbmake` runs each notebook as a smoke run (`INSTAGAN_SMOKE=1`, a few minutes at most on
2 CPU cores) unless the environment says otherwise; the kernels inherit this environment."""

import os

os.environ.setdefault("INSTAGAN_SMOKE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
