"""`python -m nmt` lists the programs (each is `python -m nmt.NAME` and the console script `nmt-NAME`)."""
PROGRAMS = ("prepare", "train", "distill", "translate", "evaluate", "calibrate", "serve", "average", "export", "diagnose")

print("nmt: raw parallel text to a scored translation model. The programs (python -m nmt.NAME, or nmt-NAME):",
      *(f"  {name}" for name in PROGRAMS), "Each takes Hydra overrides; --cfg job prints the configuration; "
      "docs/config.md lists every key.", sep="\n")
