# LinearARD pipeline: RoPE scaling -> restoration -> lm-eval suites -> results/summary.csv.
# Run `snakemake --cores 2` for the embedded default, or `--configfile config/<exp>.yaml`: a config file
# given is complete on its own (the schema fills what it leaves out); the default is read only without one.
# Resolved against the Snakefile, so `snakemake -d elsewhere` still finds the embedded default.
if not workflow.config_settings.configfiles:

    configfile: os.path.join(workflow.basedir, "config", "default.yaml")



include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/teacher.smk"
include: "workflow/rules/scale.smk"
include: "workflow/rules/restore.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


report: "workflow/report/workflow.rst"


rule all:
    input:
        L.summary_csv,
        L.summary_md,
        L.summary_html,
        L.plots,
        L.config_used,
    default_target: True
