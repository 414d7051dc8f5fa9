"""Checking the shape of comm messages that arrive from a frontend.

A frontend can send anything; the handlers act only on messages that pass
``check_comm_message`` and log the reason it gives for the others.
"""

from __future__ import annotations

import dataclasses
import reprlib
import typing as t

# Real ids are 32 hex digits; anything this long is not an id worth registering.
MAX_NAME_LENGTH = 1024

_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlist = 4
_short.maxdict = 4


def wire_repr(value: object) -> str:
    """A short, safe description of a value from the wire, for log lines."""
    return f"{type(value).__name__} {_short.repr(value)}"


@dataclasses.dataclass(frozen=True)
class CommRequest:
    """The parts of a well-formed comm message that the handlers use."""

    comm_id: str
    target_name: str | None


class MalformedMessage(ValueError):
    """A comm message that the handlers refuse; the text says why."""


def _check_name(content: dict[str, t.Any], key: str) -> str:
    value = content.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedMessage(f"content.{key} must be a non-empty string, got {wire_repr(value)}")
    if len(value) > MAX_NAME_LENGTH:
        raise MalformedMessage(
            f"content.{key} is {len(value)} characters long (at most {MAX_NAME_LENGTH})"
        )
    if not _is_utf8(value):
        # JSON can carry lone surrogates ("\ud800"); no reply could name them.
        raise MalformedMessage(f"content.{key} is not valid Unicode text: {wire_repr(value)}")
    return value


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_comm_message(msg: object, msg_type: str) -> CommRequest:
    """Check a ``comm_open``/``comm_msg``/``comm_close`` message; raise MalformedMessage if bad."""
    if not isinstance(msg, dict):
        raise MalformedMessage(f"the message must be a dict, got {wire_repr(msg)}")
    content = msg.get("content")
    if not isinstance(content, dict):
        raise MalformedMessage(f"content must be an object, got {wire_repr(content)}")
    metadata = msg.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise MalformedMessage(f"metadata must be an object, got {wire_repr(metadata)}")
    data = content.get("data")
    if data is not None and not isinstance(data, dict):
        raise MalformedMessage(f"content.data must be an object, got {wire_repr(data)}")
    comm_id = _check_name(content, "comm_id")
    target_name = _check_name(content, "target_name") if msg_type == "comm_open" else None
    return CommRequest(comm_id=comm_id, target_name=target_name)


def comm_id_of(msg: object) -> str | None:
    """The comm id of a message if it has a usable one, else None."""
    if isinstance(msg, dict):
        content = msg.get("content")
        if isinstance(content, dict):
            comm_id = content.get("comm_id")
            if (
                isinstance(comm_id, str)
                and comm_id
                and len(comm_id) <= MAX_NAME_LENGTH
                and _is_utf8(comm_id)
            ):
                return comm_id
    return None
