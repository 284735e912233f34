"""The report: joins metrics.json files with config/papers.yaml and renders reports/index.html."""
