# weakgen experiment graph. Rules are generated from params.yaml and the chapter declarations through
# stages/graph.py, the same stage list that `python -m stages.export_dvc` turns into dvc.yaml, so both
# tools run the same commands on the same files.
#
#   snakemake --cores all reports/thesis_tables.pdf                  # default profile (smoke)
#   snakemake --cores all reports/thesis_tables.pdf --config profile=paper
#   snakemake --cores all && snakemake --report reports/report.html  # PDF, then Snakemake's HTML report
import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")
sys.path.insert(0, os.getcwd())

from stages import paths
from stages.errors import WeakgenError
from stages.graph import build_graph
from stages.html_report import html_stage, items
from stages.registry import check_profile, load_params

# params.yaml is read by the registry (schema-validated, errors with line and column), not by `configfile:`.
# `--config` selects the profile; any other key would be silently ignored, so it is refused.
UNKNOWN_CONFIG = sorted(set(config) - {"profile"})
try:
    if UNKNOWN_CONFIG:
        raise WeakgenError(f"--config {', '.join(UNKNOWN_CONFIG)}: unknown key(s); only profile=NAME is read "
                           f"(edit params.yaml for anything else).")
    PARAMS = load_params("params.yaml")
    PROFILE = check_profile(PARAMS, config.get("profile"))
    GRAPH = build_graph(PARAMS, PROFILE)
    # The HTML report's results (figures, tables, training curves), flagged on the rules that write them, and
    # the rule that writes their captions and draws the curves (Snakemake only; not a DVC stage).
    REPORT_ITEMS = {item.path: item for item in items(PARAMS, PROFILE, GRAPH)}
    HTML = html_stage(PROFILE, list(REPORT_ITEMS.values()))
except WeakgenError as exc:
    sys.exit(f"error: {exc}")

config["profile"] = PROFILE  # for the report's front page (workflow/report/workflow.rst)
report: "workflow/report/workflow.rst"

# Stage commands call `python`: make it the interpreter that runs Snakemake (the project's venv).
shell.prefix(f"set -o pipefail; export PATH={Path(sys.executable).parent}:$PATH; ")

# Threads per job: the profile's torch_threads when set (results then do not depend on the scheduler),
# otherwise what the stage asks for, capped by --cores.
TORCH_THREADS = PARAMS["profiles"][PROFILE].get("torch_threads")


def outputs(st):
    """A stage's outputs, those that are results of the HTML report flagged with their caption and place."""
    return [report(out, caption=it.caption, category=it.category, subcategory=it.subcategory, labels=it.labels)
            if (it := REPORT_ITEMS.get(out)) else out for out in st.outs]


rule all:
    default_target: True
    input:
        paths.REPORT,
        HTML.outs,


for st in GRAPH + [HTML]:

    rule:
        name:
            st.name
        input:
            st.deps,
        output:
            outputs(st),
        params:
            cmd=st.shell,
            digest=st.digest,
            usage=f"logs/{PROFILE}/{st.name}.usage.json",
        log:
            f"logs/{PROFILE}/{st.name}.log",
        threads: TORCH_THREADS or min(st.resources.cpus, workflow.cores)
        resources:
            gpu=st.resources.gpu,
            runtime=st.resources.runtime,
            mem_mb=st.resources.mem_mb,
        # The stage writes its wall/CPU seconds and peak memory to params.usage (stages/usage.py).
        shell:
            "export WEAKGEN_USAGE_FILE={params.usage:q}; {params.cmd} 2>&1 | tee {log}"
