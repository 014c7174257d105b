"""The check-ins source: KR owners' dated confidence, comment and optional value, from CSV and
YAML files in `$OKR_DATA_DIR/checkins`. `extract` loads them into `raw.checkins`, `staging`
builds `staging.checkins` from it, `tables` defines both and the confidence scale."""
