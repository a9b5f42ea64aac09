"""Every name the catalogue issue lists is registered in the ``catalogue`` group and listed by
``gen-measures list -l`` with its reference. (Finite on every bundled model: the slow
``tests/test_contract.py::test_every_measure_on_every_sample_model`` runs ``--measures all``.)"""

from __future__ import annotations

import subprocess
import sys

from gen_measures.registry import get_measure, resolve_measures

ISSUE_NAMES = """
params l2 l2_dist inverse_margin log_prod_of_spec log_prod_of_spec_over_margin log_sum_of_spec
log_sum_of_spec_over_margin fro_over_spec log_spec_init_main log_spec_orig_main log_prod_of_fro
log_prod_of_fro_over_margin log_sum_of_fro log_sum_of_fro_over_margin fro_dist dist_spec_init param_norm
path_norm path_norm_over_margin
log_prod_of_spec_fft log_prod_of_spec_over_margin_fft log_sum_of_spec_fft log_sum_of_spec_over_margin_fft
fro_over_spec_fft log_spec_init_main_fft log_spec_orig_main_fft dist_spec_init_fft
pacbayes_init pacbayes_orig pacbayes_flatness pacbayes_mag_init pacbayes_mag_orig pacbayes_mag_flatness
hessian_top_eigenvalue hessian_trace
ww_alpha_weighted ww_log_norm ww_log_spectral_norm ww_stable_rank ww_log_alpha_norm
""".split()


def test_every_issue_name_is_in_the_catalogue_group_and_listed_with_its_reference():
    group = {s.name for s in resolve_measures("catalogue")}
    assert set(ISSUE_NAMES) <= group
    proc = subprocess.run([sys.executable, "-m", "gen_measures", "list", "-l"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for name in ISSUE_NAMES:
        spec = get_measure(name)
        assert spec.family == "catalogue" and not spec.default and spec.reference
        assert name in proc.stdout and spec.reference.split(",")[0] in proc.stdout, name
