"""`openpairs serve DIR`: the search API (ours and clip-retrieval's) and the web page, on 127.0.0.1."""

from __future__ import annotations

from typing import Annotated

import typer


def serve_command(
    directory: Annotated[str, typer.Argument(help="dataset directory (with index/) or an index directory")],
    host: Annotated[str, typer.Option("--host", help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 1234,
    name: Annotated[
        str, typer.Option("--name", help="index name (default: the dataset directory name)")
    ] = "",
    clip_model: Annotated[
        str | None, typer.Option("--clip-model", help="CLIP for text/image queries")
    ] = None,
    clip_pretrained: Annotated[str | None, typer.Option("--clip-pretrained", help="open_clip tag")] = None,
    clip_checkpoint: Annotated[
        str | None, typer.Option("--clip-checkpoint", help="local weights file")
    ] = None,
    clip_device: Annotated[str, typer.Option("--clip-device", help="cpu, cuda or auto")] = "cpu",
    allow_image_url: Annotated[
        bool, typer.Option("--allow-image-url", help="let queries fetch image URLs")
    ] = False,
    allow_address: Annotated[
        list[str] | None, typer.Option("--allow-address", help="address/network image URLs may reach")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="server processes (each loads the index)")] = 1,
    max_k: Annotated[int, typer.Option("--max-k", help="most results per query")] = 500,
    max_body: Annotated[str, typer.Option("--max-body", help="largest request body")] = "8M",
    cors_origin: Annotated[
        list[str] | None, typer.Option("--cors-origin", help="allowed browser origins (default: any)")
    ] = None,
) -> None:
    """Serve kNN search over DIR/index: POST /api/search, clip-retrieval's API, and a web page at /."""
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
    except IndexNotFoundError as exc:
        typer.echo(f"serve: {exc}", err=True)
        raise typer.Exit(2) from exc
    except ServeStartError as exc:
        typer.echo(f"serve: {exc}", err=True)
        raise typer.Exit(1) from exc


def register(app: typer.Typer) -> None:
    """Add the serve command to the app."""
    app.command("serve")(serve_command)
