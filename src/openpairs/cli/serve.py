"""`openpairs serve DIR`: the search API (ours and clip-retrieval's) and the web page, on 127.0.0.1."""

from __future__ import annotations

from typing import Annotated

import typer

Opt = typer.Option
_Dir = Annotated[str, typer.Argument(help="dataset directory (with index/) or an index directory")]
_Host = Annotated[str, Opt("--host", help="address to bind")]
_Port = Annotated[int, Opt("--port", help="port to listen on")]
_Name = Annotated[str, Opt("--name", help="index name (default: the dataset directory name)")]
_Model = Annotated[str | None, Opt("--clip-model", help="CLIP for text/image queries")]
_Pretrained = Annotated[str | None, Opt("--clip-pretrained", help="open_clip tag")]
_Checkpoint = Annotated[str | None, Opt("--clip-checkpoint", help="local weights file")]
_Device = Annotated[str, Opt("--clip-device", help="cpu, cuda or auto")]
_ImageUrl = Annotated[bool, Opt("--allow-image-url", help="let queries fetch image URLs")]
_Address = Annotated[list[str] | None, Opt("--allow-address", help="address/network image URLs may reach")]
_Workers = Annotated[int, Opt("--workers", help="server processes (each loads the index)")]
_MaxK = Annotated[int, Opt("--max-k", help="most results per query")]
_MaxBody = Annotated[str, Opt("--max-body", help="largest request body")]
_Cors = Annotated[list[str] | None, Opt("--cors-origin", help="allowed browser origins (default: any)")]


def serve_command(
    directory: _Dir,
    host: _Host = "127.0.0.1",
    port: _Port = 1234,
    name: _Name = "",
    clip_model: _Model = None,
    clip_pretrained: _Pretrained = None,
    clip_checkpoint: _Checkpoint = None,
    clip_device: _Device = "cpu",
    allow_image_url: _ImageUrl = False,
    allow_address: _Address = None,
    workers: _Workers = 1,
    max_k: _MaxK = 500,
    max_body: _MaxBody = "8M",
    cors_origin: _Cors = None,
) -> None:
    """Serve kNN search over DIR/index (POST /api/search, clip-retrieval's API) and a web page at / that
    searches and browses the build (/#browse: kept and dropped samples, GET /api/browse)."""
    import logging
    import os

    from openpairs.index.build import INDEX_JSON
    from openpairs.index.choose import parse_size
    from openpairs.index.search import IndexNotFoundError
    from openpairs.serve.app import ServeStartError, run
    from openpairs.serve.config import ServeConfig

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    own = os.path.exists(os.path.join(directory, INDEX_JSON))
    config = ServeConfig(index_dir=directory if own else os.path.join(directory, "index"), name=name,
                         clip_model=clip_model, clip_pretrained=clip_pretrained, clip_checkpoint=clip_checkpoint,
                         clip_device=clip_device, max_k=max_k, max_body_bytes=parse_size(max_body),
                         allow_image_url=allow_image_url, image_url_allow_addresses=tuple(allow_address or ()),
                         cors_origins=tuple(cors_origin or ("*",)))  # fmt: skip
    try:
        run(config, host=host, port=port, workers=workers)
    except (IndexNotFoundError, ServeStartError) as exc:
        typer.echo(f"serve: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, IndexNotFoundError) else 1) from exc


def register(app: typer.Typer) -> None:
    """Add the serve command to the app."""
    app.command("serve")(serve_command)
