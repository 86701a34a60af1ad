"""Contamination scans: sources streamed (:mod:`.corpus`, file formats in :mod:`.formats`),
the eval-side index and vectorised matching (:mod:`.textindex`, :mod:`.sketches`,
:mod:`.matching`), the scan itself (:mod:`.scan`, reported as :mod:`.report`, configured
by :mod:`.config`), and the same scan on a Dask cluster (:mod:`.shards`, :mod:`.cluster`)."""
