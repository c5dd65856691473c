"""Dataset readers and writers: downloads (checksummed, resumable), safe extraction, raw-format parsers,
preprocess functions that write the fixed uint8 arrays, and synthetic sources written in each dataset's
real raw format for the smoke and ci profiles. Which chapter uses which dataset is declared by the chapters."""
