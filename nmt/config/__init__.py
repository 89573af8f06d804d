"""The configuration: the schema with its defaults and ranges (`schema`) and the rules that span
fields or look at the machine (`rules`). Hydra composes `conf/config.yaml` over the schema."""
