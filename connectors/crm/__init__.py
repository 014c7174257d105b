"""The CRM source: `api` syncs the CRM REST API into `raw.crm_<object>`, `staging` builds the
typed `staging.crm_<object>` tables, `properties` types the property values, `tables` defines the
tables, and `simulator` serves the API locally. `api` imports `requests`: import it only where a
sync runs."""
