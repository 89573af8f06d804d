"""`python -m nmt` lists the entry points."""
print(__doc__ or "", "Entry points: python -m nmt.prepare | nmt.train | nmt.translate | nmt.evaluate", sep="")
