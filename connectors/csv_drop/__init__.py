"""The CSV drop folder source: `extract` loads the files into `raw.csv_observations`, `staging`
builds `staging.csv_observations` from it, `tables` defines both."""
