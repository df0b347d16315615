"""Exports of a finished run folder: GraphML, GEXF, XLSX, i2 entity/link CSV, pseudonymised copies."""
