"""SIP messages grouped into dialogs, one per Call-ID, with what `kamlog calls` lists of each.

A dialog keeps counters and the few facts it shows, never its messages: memory grows with the
number of Call-IDs, not with the capture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .sip import SipMessage, rfc3339

#: The final state a failure code gives an INVITE dialog (sngrep's words where it has them).
STATE_BY_CODE: dict[int, str] = {
    403: "FORBIDDEN", 404: "NOT FOUND", 408: "TIMEOUT", 480: "UNAVAILABLE", 484: "ADDRESS INCOMPLETE",
    486: "BUSY", 487: "CANCELLED", 488: "NOT ACCEPTABLE", 500: "SERVER ERROR", 503: "UNAVAILABLE",
    600: "BUSY", 603: "DECLINED",
}


@dataclass(slots=True)
class Dialog:
    """What one Call-ID did in the capture."""

    call_id: str
    first_method: str | None = None
    from_uri: str | None = None
    to_uri: str | None = None
    start_ns: int = 0
    end_ns: int = 0
    digits: int = 6
    messages: int = 0
    retransmissions: int = 0
    malformed: int = 0
    final_code: int | None = None
    bye: bool = False
    cancel: bool = False
    expires_zero: bool = False
    provisional: bool = False
    endpoints: list[str] = field(default_factory=list)
    linked_call_ids: set[str] = field(default_factory=set)
    _seen: set[int] = field(default_factory=set, repr=False)

    def add(self, msg: SipMessage) -> None:
        payload = msg.payload
        if not self.messages:
            self.start_ns = payload.ts_ns
            self.digits = payload.digits
        self.messages += 1
        self.start_ns = min(self.start_ns, payload.ts_ns)
        self.end_ns = max(self.end_ns, payload.ts_ns)
        for endpoint in (f"{payload.src_ip}:{payload.src_port}", f"{payload.dst_ip}:{payload.dst_port}"):
            if endpoint not in self.endpoints:
                self.endpoints.append(endpoint)
        if msg.basic_error is not None:
            self.malformed += 1
        # A message seen before on the same path is a retransmission. Kept as the key's hash: a
        # dialog of a few messages cannot meet a 64-bit collision, and a million calls then fit.
        key = hash((payload.src_ip, payload.src_port, payload.dst_ip, payload.dst_port, msg.method,
                    msg.status_code, msg.cseq_num, msg.cseq_method, msg.branch, msg.to_tag))
        if key in self._seen:
            self.retransmissions += 1
            return
        self._seen.add(key)
        for linked in msg.link_call_ids:
            if linked != self.call_id:
                self.linked_call_ids.add(linked)
        if msg.method is not None:
            self._request(msg)
        elif msg.status_code is not None:
            self._response(msg)

    def _request(self, msg: SipMessage) -> None:
        if self.first_method is None and msg.method not in ("ACK", "CANCEL"):
            self.first_method = msg.method
            self.from_uri = msg.from_uri
            self.to_uri = msg.to_uri
        if msg.method == "BYE":
            self.bye = True
        elif msg.method == "CANCEL":
            self.cancel = True
        elif msg.method == "REGISTER" and msg.method == self.first_method:
            self.expires_zero = msg.unregisters

    def _response(self, msg: SipMessage) -> None:
        code = msg.status_code
        assert code is not None
        if msg.cseq_method != self.first_method:
            return
        if code < 200:
            self.provisional = True
            return
        if self.final_code is not None and self.final_code < 300 and code >= 300:
            return  # a late failure after the answer (another fork) does not undo the answer
        self.final_code = code

    @property
    def state(self) -> str:
        """COMPLETED, IN CALL, BUSY, NOT FOUND, CANCELLED, REGISTERED, ... (the code comes apart)."""
        code = self.final_code
        if self.first_method == "INVITE":
            if code is None:
                return "CANCELLED" if self.cancel else "CALL SETUP" if self.provisional else "NO ANSWER"
            if code < 300:
                return "COMPLETED" if self.bye else "IN CALL"
            if code < 400:
                return "DIVERTED"
            return STATE_BY_CODE.get(code, "REJECTED")
        if code is None:
            return "NO ANSWER"
        if code < 300:
            if self.first_method == "REGISTER":
                return "UNREGISTERED" if self.expires_zero else "REGISTERED"
            return "OK"
        if code in (401, 407):
            return "CHALLENGED"
        return STATE_BY_CODE.get(code, "FAILED")

    @property
    def state_text(self) -> str:
        """The state with its code, as the text table shows it: `BUSY 486`, `COMPLETED`."""
        code = self.final_code
        if code is None or (code < 300 and self.first_method in ("INVITE", "REGISTER")):
            return self.state
        return f"{self.state} {code}"

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


class Dialogs:
    """Collects dialogs from a stream of SIP messages, in order of their first message."""

    def __init__(self) -> None:
        self.by_call_id: dict[str, Dialog] = {}

    def add(self, msg: SipMessage) -> None:
        call_id = msg.call_id
        if call_id is None:
            return
        dialog = self.by_call_id.get(call_id)
        if dialog is None:
            dialog = self.by_call_id[call_id] = Dialog(call_id)
        dialog.add(msg)

    def extend(self, messages: Iterable[SipMessage]) -> Dialogs:
        for msg in messages:
            self.add(msg)
        return self

    def linked(self) -> Iterator[list[Dialog]]:
        """Dialogs in order of their first message, linked legs (X-CID ...) together: each group
        is led by its earliest dialog."""
        links: dict[str, set[str]] = {}
        for dialog in self.by_call_id.values():
            for other in dialog.linked_call_ids:
                if other in self.by_call_id:
                    links.setdefault(dialog.call_id, set()).add(other)
                    links.setdefault(other, set()).add(dialog.call_id)
        ordered = sorted(self.by_call_id.values(), key=lambda d: d.start_ns)
        done: set[str] = set()
        for dialog in ordered:
            if dialog.call_id in done:
                continue
            group, todo = [], [dialog.call_id]
            while todo:
                call_id = todo.pop()
                if call_id in done:
                    continue
                done.add(call_id)
                group.append(self.by_call_id[call_id])
                todo.extend(links.get(call_id, ()))
            group.sort(key=lambda d: d.start_ns)
            for member in group:
                member.linked_call_ids |= {d.call_id for d in group if d is not member}
            yield group


def dialog_document(dialog: Dialog) -> dict[str, Any]:
    """The JSON object `kamlog calls --format json` writes for one dialog."""
    return {
        "call_id": dialog.call_id,
        "linked_call_ids": sorted(dialog.linked_call_ids),
        "from": dialog.from_uri,
        "to": dialog.to_uri,
        "first_method": dialog.first_method,
        "start": rfc3339(dialog.start_ns, 6),
        "end": rfc3339(dialog.end_ns, 6),
        "duration_s": round(dialog.duration_s, 6),
        "state": dialog.state,
        "final_code": dialog.final_code,
        "messages": dialog.messages,
        "retransmissions": dialog.retransmissions,
        "malformed": dialog.malformed,
        "endpoints": list(dialog.endpoints),
    }
