"""`python -m nmt` lists the entry points."""
print(__doc__ or "", "Entry points (each also a console script nmt-NAME): python -m nmt.prepare | nmt.train | "
      "nmt.translate | nmt.evaluate | nmt.serve | nmt.average", sep="\n")
