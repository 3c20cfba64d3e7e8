"""LevelDB storage and the library half of backup, restore and ledger check."""
