"""What the evaluation stages (`evaldata`, `evaluate`, `stage-eval-data`) are built from: suites, the
held-out corpus, the local tasks' data generators and the staging of lm-eval's own tasks."""
