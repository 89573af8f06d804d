"""What training leaves on disk and what is made of it: the checkpoint file format
(`checkpoint`), the run folder (`run_folder`: its summary, resuming, the recommended
checkpoint), checkpoint averaging (`average`) and the shareable model folder (`model_folder`)."""
