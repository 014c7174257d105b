"""The analytics exports source: `extract` loads the event and report files into
`raw.analytics_events` and `raw.analytics_report`, `staging` builds the staging tables from them,
`tables` defines them."""
