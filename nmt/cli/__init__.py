"""The programs, one module each (`python -m nmt.X` and the console scripts `nmt-X` run them):
prepare, train, translate, evaluate, serve, average, export, diagnose. Each is a thin `run(cfg,
run_dir)` over library functions, wrapped by `wrapper.entry_point` (Hydra, config checks,
one-line errors for the user's mistakes)."""
