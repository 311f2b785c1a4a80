"""``biometric chip inspect``: read EF.DG2 and check EF.SOD from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from biometric.chip.passive_auth import ChipAuthStatus
from biometric.chip.policy import ChipAuthPolicy
from biometric.chip.trust import TrustStore
from biometric.console import guard, out
from biometric.views import ChipAuthView, ChipImageView

chip_app = typer.Typer(help="ICAO 9303 chip files: the DG2 portrait and passive authentication.",
                       no_args_is_help=True)

SodOption = Annotated[Path | None, typer.Option("--sod", help="EF.SOD read from the chip.")]
Dg1Option = Annotated[Path | None, typer.Option("--dg1", help="EF.DG1 (MRZ), hash checked too.")]
CscaOption = Annotated[list[Path] | None, typer.Option(
    "--csca", envvar="BIOMETRIC_CSCA_DIR",
    help="Trust store: folder or file of CSCA certificates, master lists (.ml), CRLs (.crl).")]
PolicyOption = Annotated[ChipAuthPolicy, typer.Option(
    "--chip-auth", envvar="BIOMETRIC_CHIP_AUTH",
    help="Chip signature policy: off, warn or block.")]

COLOURS = {ChipAuthStatus.VERIFIED: "green", ChipAuthStatus.NOT_CHECKED: "yellow"}


def load_trust(paths: list[Path] | None) -> TrustStore | None:
    return TrustStore.load(*paths) if paths else None


def read_optional(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None else None


def print_auth(console: Console, auth: ChipAuthView | None) -> None:
    if auth is None:
        console.print("chip signature: not checked (policy off)")
        return
    colour = COLOURS.get(ChipAuthStatus(auth.status), "red")
    console.print(f"chip signature: [bold {colour}]{auth.status.upper()}[/] - {auth.message}",
                  highlight=False)
    if auth.issuer:
        console.print(f"  issuer (CSCA): {auth.issuer}", highlight=False)
        console.print(f"  signer (DS):   {auth.signer}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(chip_app, name="chip")


@chip_app.command("inspect")
def inspect(
    dg2: Annotated[Path, typer.Argument(help="EF.DG2 read from the chip.")],
    sod: SodOption = None,
    dg1: Dg1Option = None,
    csca: CscaOption = None,
    extract: Annotated[Path | None, typer.Option(
        help="Write the portrait image (JPEG or JPEG 2000) to this file.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parse EF.DG2 and check EF.SOD. Exit 0 verified or not checked, 1 failed, 2 bad file."""
    from biometric.chip.reader import read_chip

    reading = guard(lambda: read_chip(dg2.read_bytes(), read_optional(sod),
                                      load_trust(csca), read_optional(dg1)))
    if extract is not None:
        extract.write_bytes(reading.portrait)
    images = [ChipImageView.model_validate(img) for img in reading.dg2.images]
    auth = None if reading.auth is None else ChipAuthView.model_validate(reading.auth)
    if as_json:
        out.print_json(json.dumps({"images": [i.model_dump() for i in images],
                                   "chip_auth": auth.model_dump() if auth else None,
                                   "timings_ms": reading.timings_ms}))
    else:
        for k, img in enumerate(images):
            out.print(f"image {k}: {img.data_type.upper()} {img.width}x{img.height}"
                      f", {img.image_type}, {img.image_bytes} bytes at offset "
                      f"{img.image_offset} (ISO/IEC 19794-5 v{img.version})")
        print_auth(out, auth)
    if reading.auth is not None and reading.auth.failed:
        raise typer.Exit(1)
