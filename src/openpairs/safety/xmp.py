"""IPTC / PLUS `plus:DataMining` in an XMP packet: the image's own data-mining and AI-training prohibition.

The PLUS License Data Format vocabulary (http://ns.useplus.org/ldf/vocab/) has nine values. Building an
image-text dataset is data mining, and its output trains AI models, generative ones included, so every
`DMI-PROHIBITED*` value opts the image out: the three that point to a constraint or rights expression
elsewhere too, since a free-text constraint cannot be checked by a program. `DMI-ALLOWED` and
`DMI-UNSPECIFIED` (and any value outside the vocabulary) do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from xml.etree.ElementTree import Element, ParseError

PLUS_NS = "http://ns.useplus.org/ldf/xmp/1.0/"
RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
VOCABULARY = "http://ns.useplus.org/ldf/vocab/"
PROHIBITED = frozenset(
    {
        "dmi-prohibited",
        "dmi-prohibited-aimltraining",
        "dmi-prohibited-genaimltraining",
        "dmi-prohibited-exceptsearchengineindexing",
        "dmi-prohibited-seeconstraint",
        "dmi-prohibited-seeembeddedrightsexpr",
        "dmi-prohibited-seelinkedrightsexpr",
    }
)
_PROPERTY = f"{{{PLUS_NS}}}DataMining"
_RESOURCE = f"{{{RDF_NS}}}resource"


def data_mining_signal(packet: bytes) -> str | None:
    """`xmp plus:datamining: <value>` when the packet prohibits data mining, else None (a malformed
    packet, or one with a DTD, is no signal)."""
    if b"DataMining" not in packet:  # most XMP (cameras, editors) never names it: skip the parse
        return None
    root = _parse(packet)
    if root is None:
        return None
    for value in _values(root):
        term = value.strip().lower().removeprefix(VOCABULARY.lower())
        if term in PROHIBITED:
            return f"xmp plus:datamining: {term}"
    return None


def _parse(packet: bytes) -> Element | None:
    """The packet as XML (defusedxml: DTDs and entities refused), or None."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        root: Element = fromstring(packet.rstrip(b"\x00 \t\r\n"), forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError):
        return None
    return root


def _values(root: Element) -> Iterator[str]:
    """Every value given to plus:DataMining: as an attribute, an element's text or its rdf:resource."""
    for element in root.iter():
        if _PROPERTY in element.attrib:
            yield element.attrib[_PROPERTY]
        if element.tag == _PROPERTY:
            yield element.get(_RESOURCE) or element.text or ""
