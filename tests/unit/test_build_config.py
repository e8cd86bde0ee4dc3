"""`--set STAGE.FIELD=VALUE` parsing and the resolved build configuration."""

from __future__ import annotations

import json

import pytest

from openpairs.build.config import build_config, parse_settings


def test_settings_are_typed_by_their_field() -> None:
    parsed = parse_settings([
        "download.image_size=384", "download.upscale=true", "filter.max_punsafe=0.5",
        "extract.drop_extensions=.svg,.gif", "clip.pretrained=none", "dedup.dedup=url", "clip.heads=force",
    ])  # fmt: skip
    assert parsed == {
        "download": {"image_size": 384, "upscale": True},
        "filter": {"max_punsafe": 0.5},
        "extract": {"drop_extensions": (".svg", ".gif")},
        "clip": {"pretrained": None, "heads": "force"},
        "dedup": {"dedup": "url"},
    }


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("download.image_size", "STAGE.FIELD=VALUE"),
        ("nostage.x=1", "has no option"),
        ("download.nofield=1", "has no option"),
        ("download.upscale=maybe", "true or false"),
    ],
)
def test_bad_settings_are_refused_clearly(setting: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_settings([setting])


def test_config_json_has_every_stage_and_versions() -> None:
    config = build_config("laion5b", {"download": {"image_size": 384}})
    data = json.loads(config.to_json())
    assert data["download"]["image_size"] == 384
    assert data["extract"]["relative_urls"] == "drop" and data["dedup"]["dedup"] == "url"
    assert data["filter"]["min_similarity"] == 0.28 and data["filter"]["min_similarity_other"] == 0.26
    assert data["export_formats"] == ["laion5b", "webdataset"]
    assert data["versions"]["openpairs"] == "0.1.0"
    with pytest.raises(ValueError, match="unknown stage"):
        build_config("laion5b", {"nope": {}})
    assert build_config("laion5b", parse_settings(["clip.heads=force"])).clip.heads == "force"
    with pytest.raises(ValueError, match="heads must be one of auto, force, off"):
        build_config("laion5b", parse_settings(["clip.heads=always"]))


def test_page_meta_opt_out_is_on_by_default_and_download_token_names_us_in_page_metas() -> None:
    config = build_config("laion400m", parse_settings(["download.user_agent_token=MyLab-Bot"]))
    assert config.extract.page_meta_opt_out and config.extract.user_agent_token == "MyLab-Bot"
    off = build_config("laion400m", parse_settings(["extract.page_meta_opt_out=false"]))
    assert not off.extract.page_meta_opt_out and off.extract.user_agent_token == ""


def test_an_explicit_none_replaces_the_presets_value() -> None:
    assert build_config("laion400m").clip.pretrained == "openai"
    assert build_config("laion400m", parse_settings(["clip.pretrained=none"])).clip.pretrained is None
    assert build_config("laion400m", {"clip": {"pretrained": None}}).clip.pretrained is None
