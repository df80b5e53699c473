"""Writers: one module per output, all staged and committed atomically (see ``atomic``)."""
