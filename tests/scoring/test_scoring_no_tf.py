"""scoring (and the reference reader it uses) never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys


def test_scoring_imports_without_tensorflow():
    code = (
        "import sys\n"
        "import scoring, scoring.cmi, scoring.kendall, scoring.sign_error, scoring.permutation\n"
        "import scoring.ranking, scoring.fusion, scoring.files, scoring.report\n"
        "import scoring.model_configs\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'keras', 'tf_keras', 'torch'})\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
