"""CLI command ``fdnet export`` (docs/exports.md).

::

    fdnet export RUN_DIR --out EXPORT_DIR [--format graphml,gexf,xlsx,i2,csv,geo]
                 [--pseudonymise (--key-file PATH | --new-key PATH)] [--audit-db URL]
    fdnet export --new-key PATH          # only create a key

Errors (altered run folder, EXPORT_DIR not empty or inside RUN_DIR, key
inside either folder or not a strong random key, existing --new-key file) exit 2 with one paragraph
on stderr and leave nothing behind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(app: typer.Typer) -> None:
    """Add ``fdnet export`` to the fdnet CLI."""

    @app.command("export")
    def export(
        run_dir: Optional[Path] = typer.Argument(None, help="A run folder written by `fdnet run` (left unchanged)."),
        out_dir: Optional[Path] = typer.Option(None, "--out", help="Export folder to create; must be new or "
                                               "empty and outside RUN_DIR."),
        formats: str = typer.Option("all", "--format", help="Comma-separated: graphml, gexf, xlsx, i2, csv, geo, "
                                    "or all."),
        pseudonymise: bool = typer.Option(False, "--pseudonymise", "--pseudonymize",
                                          help="Replace every person ID by HMAC-SHA256(key, ID) (for auditors)."),
        key_file: Optional[Path] = typer.Option(None, "--key-file", help="Pseudonymisation key: at least 256 "
                                                "random bits, as raw bytes, hex or base64 (a chosen passphrase "
                                                "is refused); must lie outside RUN_DIR and EXPORT_DIR."),
        new_key_path: Optional[Path] = typer.Option(None, "--new-key", help="Create a new random 32-byte key "
                                                    "file (mode 0600, never overwritten); with --pseudonymise, "
                                                    "export with it."),
        audit_db: Optional[str] = typer.Option(None, "--audit-db", envvar="FDNET_AUDIT_DB",
                                               help="Record the export in this audit log (database URL)."),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing on success."),
    ):
        """Export a finished run: GraphML/GEXF per layer, an XLSX of the lists, i2 entity/link CSVs, CSV copies.

        The run folder is first checked against its manifest; an altered folder is refused. With
        --pseudonymise every person ID becomes a keyed pseudonym, consistently across all files.
        """
        from rich.console import Console

        from ..errors import UsageError
        from .core import check_export_dir, export_run, parse_formats
        from .pseudonym import key_is_private, new_key, read_key

        say = Console(quiet=quiet, highlight=False)
        warn = Console(stderr=True, highlight=False)
        if run_dir is None:
            if new_key_path is None:
                raise UsageError("fdnet export needs RUN_DIR and --out EXPORT_DIR (or only --new-key PATH to "
                                 "create a key); see `fdnet export --help`")
            if out_dir is not None or pseudonymise or key_file is not None:
                raise UsageError("--out, --pseudonymise and --key-file need RUN_DIR")
            fp = new_key(new_key_path)
            say.print(f"wrote a new key to {new_key_path} (mode 0600; fingerprint {fp}). Keep it apart from the "
                      "data: anyone with the key and a person ID can find that person's pseudonym.", markup=False,
                      soft_wrap=True)
            return
        if out_dir is None:
            raise UsageError("fdnet export RUN_DIR needs --out EXPORT_DIR (a new or empty folder outside RUN_DIR)")
        fmts = parse_formats(formats)
        if key_file is not None and new_key_path is not None:
            raise UsageError("give either --key-file (an existing key) or --new-key (create one), not both")
        if (key_file is not None or new_key_path is not None) and not pseudonymise:
            raise UsageError("--key-file/--new-key are for pseudonymised exports: add --pseudonymise, or leave "
                             "them out for an export with the real person IDs")
        if pseudonymise and key_file is None and new_key_path is None:
            raise UsageError("--pseudonymise needs a key: --key-file PATH, or --new-key PATH to create one "
                             "(keep it outside RUN_DIR and EXPORT_DIR)")
        forbidden = {"the run folder": run_dir, "the export folder": out_dir}
        key_path = key_file
        if new_key_path is not None:
            check_export_dir(run_dir, out_dir)   # refuse early, before creating a key for nothing
            from .runfolder import load_run
            load_run(run_dir)
            new_key(new_key_path, forbidden)
            key_path = new_key_path
        elif key_file is not None:
            read_key(key_file, forbidden)   # a weak or misplaced key is refused before anything else
        if key_file is not None and not key_is_private(key_file):
            warn.print(f"fdnet: warning: the key file {key_file} is readable by other users; "
                       f"restrict it with `chmod 600 {key_file}`", markup=False)
        manifest = export_run(run_dir, out_dir, formats=fmts, key_path=key_path)
        files = manifest["files"]
        if audit_db:
            _record_export(audit_db, run_dir, out_dir, manifest)
        say.print(f"exported {run_dir} to {out_dir}: {len(files)} files ({', '.join(manifest['formats'])})"
                  + (f", person IDs pseudonymised with key {manifest['key_fingerprint']}"
                     if manifest["pseudonymised"] else "")
                  + "; checksums in export_manifest.json", markup=False, soft_wrap=True)


def _record_export(url: str, run_dir: Path, out_dir: Path, manifest: dict) -> None:
    """Record the export in the audit log (:meth:`fdnet.audit.log.AuditLog.record_export`)."""
    import hashlib

    from ..audit.log import AuditLog
    from .core import MANIFEST_NAME

    files = {name: meta["sha256"] for name, meta in manifest["files"].items()}
    files[MANIFEST_NAME] = hashlib.sha256((Path(out_dir) / MANIFEST_NAME).read_bytes()).hexdigest()
    AuditLog(url).record_export(run_dir, out_dir, files, bool(manifest["pseudonymised"]),
                                details={"formats": manifest["formats"],
                                         "key_fingerprint": manifest["key_fingerprint"],
                                         "fdnet_version": manifest["fdnet_version"]})
