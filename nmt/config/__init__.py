"""The configuration: the schema with its defaults and ranges (`schema`), its choices (`choices`),
the rules that span fields or look at the machine (`rules`), and the reference docs/config.md
made from them (`reference`). Hydra composes `conf/config.yaml` over the schema."""
