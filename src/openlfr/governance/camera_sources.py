"""Where a camera may read its video from.

A camera's address is a request the camera worker makes again and again, so it is checked as
one: when the camera is registered (:func:`openlfr.governance.cameras.add_camera`) and each
time a worker opens it (:func:`openlfr.pipeline.worker.run_camera`).

* **Network streams**: ``rtsp``, ``rtsps``, ``http`` and ``https`` only (no ``tcp``, ``udp``,
  ``rtmp``, ``srt`` or other ffmpeg protocols), and only to hosts whose every address lies in
  one of the networks the camera's organisation allows (``Organisation.camera_networks``, set by
  its operator admins and audited; empty by default, so no network camera runs until someone
  accountable says where cameras live). A host name is resolved and each address checked.
* **Files and folders** (recordings): only inside one of the folders named by
  ``OPENLFR_CAMERA_FILE_ROOTS`` (paths separated by ``:``; default: the data directory's
  ``recordings`` folder), after resolving links.
* **Devices**: ``webcam:N``, ``/dev/videoN`` (a camera attached to this machine).

The worker's ffmpeg is also limited to the protocols these need (``protocol_whitelist`` in
:mod:`openlfr.video.stream_source`), so a stream cannot lead it to other protocols.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlsplit

from openlfr.errors import InputError

STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https")
_DEVICE = re.compile(r"^(webcam:\d{1,3}|/dev/video\d{1,3})$")


def parse_networks(networks: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks as objects; an :class:`InputError` naming any that is not a CIDR block."""
    out = []
    for net in networks:
        try:
            out.append(ipaddress.ip_network(str(net).strip(), strict=False))
        except ValueError:
            raise InputError(f"{net!r} is not a network (use CIDR, e.g. 10.20.0.0/16 or 192.168.1.7/32)") from None
    return out


def file_roots() -> list[Path]:
    """Folders recordings may be read from (``OPENLFR_CAMERA_FILE_ROOTS``)."""
    from openlfr.config import get_settings

    settings = get_settings()
    if settings.pipeline.camera_file_roots:
        return [Path(p).expanduser().resolve() for p in settings.pipeline.camera_file_roots]
    return [(Path(settings.data_dir) / "recordings").resolve()]


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError as err:
        raise InputError(f"camera host {host!r} cannot be resolved ({err.strerror or err}): refused") from None
    return sorted({ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos}, key=str)


def check_camera_source(address: str, networks: list[str]) -> None:
    """Refuse (:class:`InputError`) a camera address outside the rules in the module doc."""
    address = (address or "").strip()
    if not address:
        return
    if _DEVICE.match(address):
        return
    parts = urlsplit(address)
    scheme = parts.scheme.lower()
    if scheme in STREAM_SCHEMES:
        host = parts.hostname
        if not host:
            raise InputError(f"camera address {address!r} has no host")
        allowed = parse_networks(networks)
        if not allowed:
            raise InputError("no camera network is allowed for this organisation: an operator admin must "
                             "first list the networks its cameras live on (openlfr camera networks ...)")
        for ip in _addresses(host):
            if not any(ip in net for net in allowed):
                raise InputError(f"camera host {host} ({ip}) is outside the networks allowed for cameras "
                                 f"({', '.join(str(n) for n in allowed)})")
        return
    if scheme and scheme != "file" and not (len(scheme) == 1 and os.name == "nt"):
        raise InputError(f"camera address scheme {scheme!r} is not allowed: use rtsp, rtsps, http, https, "
                         "a recording file or folder, or a local device")
    path = Path(parts.path if scheme == "file" else address).expanduser()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InputError(f"camera recording {path} not found") from None
    roots = file_roots()
    if not any(real == root or root in real.parents for root in roots):
        raise InputError(f"camera recording {real} is outside the folders allowed for recordings "
                         f"({', '.join(str(r) for r in roots)}; OPENLFR_CAMERA_FILE_ROOTS)")


__all__ = ["STREAM_SCHEMES", "check_camera_source", "file_roots", "parse_networks"]
