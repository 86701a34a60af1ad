"""How well an eval set matches production traffic (:mod:`.compare`), the statistics behind it,
and stratified rebuilds from production decisions (:mod:`.sampling`)."""
