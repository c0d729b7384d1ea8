"""The README's usage example runs as written."""
import re
from pathlib import Path

import torch


def test_readme_example_runs():
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["rgb_pred"].shape == scope["rgb"].shape
    assert torch.isfinite(scope["loss"])
