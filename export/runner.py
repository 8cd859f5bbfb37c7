"""Command-line translate with an exported ONNX generator; see `python -m instagan_runner --help`.

python export/runner.py --model G_A.onnx --image in.png --masks m0.png m1.png --out out.png
"""

from instagan_runner.__main__ import main

if __name__ == "__main__":
    main()
